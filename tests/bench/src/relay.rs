//! The relay parts of the suite: the relay path beside plain unicast forwarding, a relay's
//! memory and CPU with 10 to 1,000 tunnel clients, and a context's cost with many channels.

use serde_json::{Value, json};
use sixcast::{
    Scope, addr,
    relay::{Relay, RelayConfig},
    stratum0::{Stratum0, Stratum0Config},
};
use sixcast_netlab::World;

use crate::suite::*;

/// The relay path (c1 multicasts on the core, i1 on the island receives through r1's relay)
/// beside plain unicast forwarding (c1 sends to a forwarder on r1, which sends on to i1). The
/// bridges snoop MLD, so c1's multicast reaches the relay's port, not every host of the core.
pub(crate) fn relay(launcher: &Launcher, seconds: f64) -> Result<Vec<Cell>, String> {
    let world = World::stratum().map_err(|err| format!("building the stratum world: {err}"))?;
    snoop(&world)?;
    let stratum0 = world
        .host("s0")
        .run(|| {
            let mut config = Stratum0Config::default();
            config.hop_limit = 8;
            Stratum0::spawn(config)
        })
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())?;
    let _relay = world
        .host("r1")
        .run(|| {
            let mut config = RelayConfig::default();
            config.hop_limit = 8;
            Relay::spawn(config)
        })
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())?;
    let s0 = format!("[{}]:{}", world.host("s0").addr(), stratum0.port());
    let r1 = world.host("r1").addr();
    let i1 = world.host("i1").addr();
    print_header(
        "the relay path (c1 -> relay r1 -> tunnel -> i1) beside unicast forwarding (c1 -> forwarder on r1 -> i1)",
    );
    let mut cells = Vec::new();
    for size in SIZES {
        let base = json!({
            "size": size, "seconds": seconds, "drain": 0.5, "channel": format!("relay/{size}"),
            "datagram": sixcast::wire::DEFAULT_DATAGRAM_SIZE, "hops": 8,
        });
        let with = |fields: Value| {
            let mut spec = base.clone();
            if let (Some(spec), Some(fields)) = (spec.as_object_mut(), fields.as_object()) {
                spec.extend(fields.clone());
            }
            spec
        };
        let mut cell = measure(
            &world,
            launcher,
            ("c1", with(json!({"system": "sixcast", "role": "send"}))),
            &[],
            &[(
                "i1".to_owned(),
                with(json!({"system": "sixcast", "role": "recv", "stratum0": s0})),
            )],
        )?;
        cell.system = "sixcast-relay".into();
        print_cell(&cell);
        cells.push(cell);
        let mut cell = measure(
            &world,
            launcher,
            (
                "c1",
                with(json!({"system": "raw", "role": "send", "target": format!("[{r1}]:7997")})),
            ),
            &[(
                "r1",
                with(json!({"system": "raw", "role": "forward", "port": 7997,
                            "target": format!("[{i1}]:7996")})),
            )],
            &[(
                "i1".to_owned(),
                with(json!({"system": "raw", "role": "recv", "port": 7996})),
            )],
        )?;
        cell.system = "udp-forwarding".into();
        print_cell(&cell);
        cells.push(cell);
    }
    println!();
    Ok(cells)
}

/// Tunnel client counts of the relay's scale run.
const RELAY_CLIENTS: [usize; 3] = [10, 100, 1000];
/// Hosts the simulated tunnel clients are spread over (each client a socket of its own).
const CLIENT_HOSTS: usize = 2;
/// Datagrams a second multicast on the core for the relay to pass down to every client.
const RELAY_SCALE_RATE: u64 = 50;

/// One relay (a process of its own on h1) serving N tunnel clients simulated on h3 and h4, all
/// joined to one group that h2 multicasts to at a steady pace: the relay's RSS and its CPU time
/// per datagram delivered down a tunnel, as N grows.
pub(crate) fn relay_scale(launcher: &Launcher) -> Result<Vec<Value>, String> {
    let world =
        World::lan(2 + CLIENT_HOSTS).map_err(|err| format!("building the LAN world: {err}"))?;
    let group = addr::group_addr(
        b"relay-scale",
        &sixcast::Profile::default(),
        Scope::default(),
    )
    .map_err(|err| err.to_string())?;
    let relay_address = format!(
        "[{}]:{}",
        world.host("h1").addr(),
        sixcast::discovery::RELAY_PORT
    );
    let seconds = 3.0;
    println!(
        "one relay (h1) serving N tunnel clients (on h3, h4), {RELAY_SCALE_RATE} datagrams/s of \
         64 B multicast on the core (h2) to their group"
    );
    println!(
        "{:>6} {:>8} {:>9} {:>10} {:>10} {:>12} {:>14} {:>8}",
        "N", "tunnels", "heard", "RSS KiB", "peak KiB", "down/s", "CPU µs/dgram", "threads"
    );
    let mut rows = Vec::new();
    for clients in RELAY_CLIENTS {
        let mut relay = launcher.start(
            &world,
            "h1",
            &json!({"system": "sixcast", "role": "relay", "hops": 8, "seconds": seconds}),
        )?;
        relay.ready()?;
        let mut simulated = Vec::new();
        for host in 0..CLIENT_HOSTS {
            let count = clients / CLIENT_HOSTS + usize::from(host < clients % CLIENT_HOSTS);
            simulated.push(launcher.start(
                &world,
                &format!("h{}", host + 3),
                &json!({"system": "raw", "role": "tunnel-clients", "count": count,
                        "relay": relay_address, "group": group.to_string(),
                        "seconds": seconds, "drain": 0.5}),
            )?);
        }
        let mut sender = launcher.start(
            &world,
            "h2",
            &json!({"system": "raw", "role": "paced-send", "size": 64, "seconds": seconds,
                    "rate": RELAY_SCALE_RATE, "group": group.to_string(),
                    "port": addr::DEFAULT_PORT}),
        )?;
        for peer in &mut simulated {
            peer.ready()?;
        }
        sender.ready()?;
        relay.go()?;
        for peer in &mut simulated {
            peer.go()?;
        }
        sender.go()?;
        sender.report()?;
        let mut report = relay.report()?;
        let (mut heard, mut received) = (0, 0);
        for mut peer in simulated {
            let figures = peer.report()?;
            heard += figures["clients_heard"].as_u64().unwrap_or(0);
            received += figures["received"].as_u64().unwrap_or(0);
        }
        let down = number(&report, "datagrams_down")?;
        let cpu_per_datagram = number(&report, "cpu_seconds")? / down.max(1.0) * 1e6;
        report["clients"] = json!(clients);
        report["clients_heard"] = json!(heard);
        report["received_by_clients"] = json!(received);
        report["cpu_us_per_datagram_down"] = json!(cpu_per_datagram);
        report["rate"] = json!(RELAY_SCALE_RATE);
        println!(
            "{clients:>6} {:>8} {heard:>9} {:>10} {:>10} {:>12.0} {cpu_per_datagram:>14.2} {:>8}",
            report["tunnels"],
            report["rss_kib"],
            report["rss_peak_kib"],
            down / number(&report, "seconds")?,
            report["threads"]
        );
        rows.push(report);
    }
    println!();
    Ok(rows)
}

/// One context on 1,000 channels; reassembly memory under a flood of partial messages.
pub(crate) fn scale(launcher: &Launcher) -> Result<Value, String> {
    let world = World::lan(2).map_err(|err| format!("building the LAN world: {err}"))?;
    let channels = 1000;
    let base = json!({"system": "sixcast", "seconds": 10.0, "channels": channels,
                      "datagram": sixcast::wire::DEFAULT_DATAGRAM_SIZE, "hops": 1});
    let with_role = |base: &Value, role: &str| {
        let mut spec = base.clone();
        spec["role"] = json!(role);
        spec
    };
    let mut receiver = launcher.start(&world, "h2", &with_role(&base, "scale-recv"))?;
    let mut sender = launcher.start(&world, "h1", &with_role(&base, "scale-send"))?;
    receiver.ready()?;
    sender.ready()?;
    receiver.go()?;
    sender.go()?;
    sender.report()?;
    let channels_report = receiver.report()?;
    println!(
        "one context on {channels} channels: heard on {} of them, RSS {} KiB, {} threads",
        channels_report["heard"], channels_report["rss_kib"], channels_report["threads"]
    );

    let bound: usize = 4 << 20;
    let group = addr::group_addr(b"flood", &sixcast::Profile::default(), Scope::default())
        .map_err(|err| err.to_string())?;
    let flood = json!({"seconds": 2.0, "drain": 0.5, "channel": "flood", "group": group.to_string(),
                       "port": addr::DEFAULT_PORT, "datagram": sixcast::wire::DEFAULT_DATAGRAM_SIZE,
                       "hops": 1, "reassembly_memory": bound});
    let mut floods = Vec::new();
    for fresh_senders in [false, true] {
        let mut spec = with_role(&flood, "flood-recv");
        spec["system"] = json!("sixcast");
        let mut receiver = launcher.start(&world, "h2", &spec)?;
        let mut spec = with_role(&flood, "flood-send");
        spec["system"] = json!("raw");
        spec["fresh_senders"] = json!(fresh_senders);
        let mut sender = launcher.start(&world, "h1", &spec)?;
        receiver.ready()?;
        sender.ready()?;
        receiver.go()?;
        sender.go()?;
        let sent = sender.report()?;
        let mut flood_report = receiver.report()?;
        flood_report["bound_kib"] = json!(bound / 1024);
        flood_report["partial_messages_sent"] = sent["sent"].clone();
        flood_report["fresh_senders"] = json!(fresh_senders);
        println!(
            "flood of {} partial 1 MiB messages from {}: reassembly charge at most {} KiB \
             (bound {} KiB), RSS {} -> {} KiB, {} given up",
            sent["sent"],
            if fresh_senders {
                "as many senders"
            } else {
                "one sender"
            },
            flood_report["reassembly_peak_kib"],
            bound / 1024,
            flood_report["rss_before_kib"],
            flood_report["rss_peak_kib"],
            flood_report["reassembly_dropped"]
        );
        floods.push(flood_report);
    }
    println!();
    let relay = relay_scale(launcher)?;
    Ok(
        json!({"channels": channels_report, "flood": floods[0], "flood_fresh_senders": floods[1],
               "relay": relay}),
    )
}
