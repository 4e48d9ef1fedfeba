//! Finding Stratum 0 with real packets from the rendezvous point of an embedded-RP group.

mod harness;

use std::{
    net::SocketAddrV6,
    time::{Duration, Instant},
};

use harness::{World, config, relay_on, world};
use sixcast::{
    Context,
    stratum0::{Stratum0, Stratum0Config},
};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn an_embedded_rp_group_names_its_stratum0() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    // The RP must be prefix::RIID (RIID 1..15), so Stratum 0 gets such an address beside its own.
    let rp: std::net::Ipv6Addr = "fd5c:c::5".parse().unwrap();
    let s0 = world.host("s0");
    let added = s0
        .command("ip")
        .args([
            "-6",
            "addr",
            "add",
            &format!("{rp}/64"),
            "dev",
            s0.ifname(),
            "nodad",
        ])
        .status()
        .unwrap();
    assert!(added.success(), "adding the RP address to s0");
    let stratum0 = s0
        .run(|| {
            let mut config = Stratum0Config::default();
            config.hop_limit = 8;
            config.listen = SocketAddrV6::new(rp, sixcast::discovery::STRATUM0_PORT, 0, 0);
            Stratum0::spawn(config).unwrap()
        })
        .unwrap();
    let _relay = relay_on(&world, "r1");
    let embedded = move || {
        let mut config = config();
        config.profile = sixcast::Profile::EmbeddedRp { rp, prefix_len: 64 };
        config
    };
    let island = world.host("i1").spawn(move || {
        let context = Context::new(embedded()).unwrap();
        let channel = context.channel("rp-found").unwrap();
        assert_eq!(sixcast::addr::embedded_rp(channel.group()), Some(rp));
        channel.join().unwrap();
        let first = channel.recv_timeout(WAIT);
        (first, context.reachability().unwrap())
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = std::sync::Arc::clone(&stop);
        world.host("c1").spawn(move || {
            let context = Context::new(embedded()).unwrap();
            let channel = context.channel("rp-found").unwrap();
            let deadline = Instant::now() + WAIT;
            while !stop.load(std::sync::atomic::Ordering::Acquire) && Instant::now() < deadline {
                channel.send(b"via the RP's Stratum 0").unwrap();
                channel.flush().unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let (first, reach) = island.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Release);
    sender.join().unwrap();
    let first = first.unwrap_or_else(|err| panic!("nothing arrived: {err}; {reach:?}"));
    assert!(first.relayed, "{reach:?}");
    assert_eq!(
        reach.stratum0,
        Some(SocketAddrV6::new(
            rp,
            sixcast::discovery::STRATUM0_PORT,
            0,
            0
        ))
    );
    assert!(stratum0.stats().probes >= 1);
}
