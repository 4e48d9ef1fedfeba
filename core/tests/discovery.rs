//! Finding Stratum 0 with real packets, through a real DNS server (dnsmasq) in a namespace of
//! the `stratum` world (feature `dns`; `embedded_rp.rs` finds it from an embedded-RP group).

mod harness;

use std::{
    net::SocketAddrV6,
    time::{Duration, Instant},
};

use harness::{
    World, config,
    dns::{Srv, dnsmasq},
    keep_sending, relay_on, stratum0_on, world,
};
use sixcast::{Config, Context, ErrorKind, locate};

const WAIT: Duration = Duration::from_secs(15);
const DOMAIN: &str = "sixcast.test";

#[test]
fn an_island_finds_stratum0_in_dns_and_reaches_the_core_through_a_relay() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (s0, s0_address) = stratum0_on(&world, "s0");
    // A second Stratum 0 with a worse (higher) SRV priority: it must never be asked.
    let (backup, backup_address) = stratum0_on(&world, "c2");
    let _relays = [relay_on(&world, "r1"), relay_on(&world, "r2")];
    let Some(dns) = dnsmasq(
        &world,
        "c1",
        53,
        DOMAIN,
        &[
            Srv {
                priority: 20,
                weight: 100,
                port: backup_address.port(),
                target: "backup.sixcast.test",
            },
            Srv {
                priority: 10,
                weight: 1,
                port: s0_address.port(),
                target: "s0.sixcast.test",
            },
        ],
        &[
            ("s0.sixcast.test", *s0_address.ip()),
            ("backup.sixcast.test", *backup_address.ip()),
        ],
    ) else {
        return;
    };
    let dns_server = dns.server;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = keep_sending(
        &world,
        "c1",
        "dns-found",
        std::sync::Arc::clone(&stop),
        WAIT,
    );
    let island = world.host("i1").spawn(move || {
        // The lookup on its own: both records, lowest priority first.
        let began = Instant::now();
        let found = locate::srv_lookup(DOMAIN, Some(dns_server), Duration::from_secs(2)).unwrap();
        eprintln!(
            "DNS discovery: SRV and AAAA lookup took {:?}",
            began.elapsed()
        );
        assert_eq!(found, [s0_address, backup_address]);
        let opened = Instant::now();
        let mut config = config();
        config.domain = Some(DOMAIN.into());
        config.dns_server = Some(dns_server);
        let context = Context::new(config).unwrap();
        let channel = context.channel("dns-found").unwrap();
        channel.join().unwrap();
        let first = channel.recv_timeout(WAIT);
        (first, opened.elapsed(), context.reachability().unwrap())
    });
    let (first, took, reach) = island.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Release);
    sender.join().unwrap();
    let first = first.unwrap_or_else(|err| panic!("nothing arrived: {err}; {reach:?}"));
    eprintln!("DNS discovery: context opened to first relayed message in {took:?}");
    assert!(
        first.relayed,
        "the island hears the core only through a relay"
    );
    assert_eq!(reach.stratum0, Some(s0_address), "{reach:?}");
    assert!(reach.relay.is_some(), "{reach:?}");
    assert!(s0.stats().probes >= 1, "{:?}", s0.stats());
    assert_eq!(
        backup.stats().probes,
        0,
        "the priority-20 Stratum 0 was asked"
    );
}

#[test]
fn dns_lookups_fail_clearly_and_within_their_bound() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let s0 = SocketAddrV6::new(world.host("s0").addr(), 6447, 0, 0);
    let Some(dns) = dnsmasq(
        &world,
        "c1",
        5300,
        DOMAIN,
        &[Srv {
            priority: 1,
            weight: 1,
            port: 6447,
            target: "no-address.sixcast.test",
        }],
        &[("s0.sixcast.test", *s0.ip())],
    ) else {
        return;
    };
    let server = dns.server;
    let silent = std::net::SocketAddr::new(world.host("c2").addr().into(), 53);
    world
        .host("i1")
        .run(|| {
            let within = Duration::from_secs(1);
            // A domain without SRV records.
            let err = locate::srv_lookup("other.sixcast.test", Some(server), within).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
            assert!(err.message().contains("_sixcast._udp.other"), "{err}");
            // An SRV record whose target has no AAAA record.
            let err = locate::srv_lookup(DOMAIN, Some(server), within).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
            assert!(err.message().contains("AAAA"), "{err}");
            // A server that never answers: a timeout, within the bound.
            let began = Instant::now();
            let err = locate::srv_lookup(DOMAIN, Some(silent), within).unwrap_err();
            let took = began.elapsed();
            assert!(
                matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Io),
                "{err}"
            );
            assert!(took < within + Duration::from_millis(500), "took {took:?}");
            // A context whose domain names nothing says so in its reachability.
            let mut config = Config::default();
            config.domain = Some("other.sixcast.test".into());
            config.dns_server = Some(server);
            let context = Context::new(config).unwrap();
            let deadline = Instant::now() + WAIT;
            loop {
                let reach = context.reachability().unwrap();
                if let Some(error) = reach.last_error {
                    assert!(error.contains("no records"), "{error}");
                    assert_eq!(reach.stratum0, None);
                    break;
                }
                assert!(Instant::now() < deadline, "no error reported: {reach:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .unwrap();
}
