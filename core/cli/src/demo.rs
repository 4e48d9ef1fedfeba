//! `sixcast demo`: builds throw-away network-namespace worlds, runs sixcast nodes in them (one
//! thread per host, each inside its host's namespace) and prints what arrived where.

use std::{
    net::SocketAddrV6,
    os::unix::process::CommandExt,
    process::{Command, ExitCode},
    sync::{Arc, Barrier, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use sixcast::{
    Config, Context, ErrorKind, Message,
    relay::{Relay, RelayConfig},
    stratum0::{Stratum0, Stratum0Config},
};
use sixcast_netlab::{Host, World};

/// Set in the re-executed demo so it does not try to enter a user namespace twice.
const IN_USERNS: &str = "SIXCAST_DEMO_IN_USERNS";
const CHANNEL: &str = "webservers";
/// How long listeners wait for the demo's messages.
const LISTEN_FOR: Duration = Duration::from_secs(2);

pub(crate) fn run() -> sixcast::Result<ExitCode> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 && std::env::var_os(IN_USERNS).is_none() {
        return reexec_in_user_namespace();
    }
    if let Err(reason) = sixcast_netlab::check_environment(false) {
        return Err(fail(format!(
            "the demo cannot build its private network: {reason}"
        )));
    }
    println!("sixcast demo: every host below is a private network namespace on this machine;");
    println!("nothing is sent on the host's own network.\n");

    let world = World::lan(3).map_err(|err| fail(format!("building the LAN world: {err}")))?;
    println!("World 1: a LAN, hosts h1, h2 and h3 on one Ethernet bridge.");
    let big = vec![b'x'; 1 << 20];
    let messages: Vec<Vec<u8>> = vec![
        b"restart nginx".to_vec(),
        b"rotate logs".to_vec(),
        Vec::new(),
        big,
    ];
    exchange(&world, "h1", &["h2", "h3"], &messages, None)?;
    drop(world);

    match sixcast_netlab::check_environment(true) {
        Ok(()) => {
            let world = World::routed_mcast()
                .map_err(|err| fail(format!("building the routed world: {err}")))?;
            let router = world
                .multicast_router_kind()
                .map_or("none", |kind| kind.name());
            println!(
                "\nWorld 2: two segments joined by a router that routes multicast ({router})."
            );
            exchange(&world, "a1", &["a2", "b1"], &messages[..2], None)?;
        }
        Err(reason) => println!("\nWorld 2 (multicast routing) skipped: {reason}"),
    }

    let world = World::routed_nomcast()
        .map_err(|err| fail(format!("building the unicast-only world: {err}")))?;
    println!("\nWorld 3: the same two segments, but the router forwards unicast only.");
    exchange(&world, "a1", &["a2", "b1"], &messages[..2], None)?;
    println!("  b1 is behind a router without multicast routing: nothing arrives natively.");
    drop(world);

    let world = World::stratum().map_err(|err| fail(format!("building the relay world: {err}")))?;
    println!(
        "\nWorld 4: the same gap, bridged. On the core segment run Stratum 0 (s0) and a relay"
    );
    println!("(r1); the island's router (to i1) still forwards unicast only. Every node is told");
    println!("where Stratum 0 is; i1 finds that native multicast does not reach the core and");
    println!("opens a tunnel to the relay.");
    let services = start_core_services(&world)?;
    let stratum0 = SocketAddrV6::new(world.host("s0").addr(), services.0.port(), 0, 0);
    exchange(&world, "c1", &["c2", "i1"], &messages[..2], Some(stratum0))?;
    let relayed = services.1.stats();
    println!(
        "  the relay carried {} datagram(s) down its tunnel and {} up",
        relayed.datagrams_down, relayed.datagrams_up
    );
    Ok(ExitCode::SUCCESS)
}

/// Stratum 0 on s0 and a relay on r1, running until dropped.
fn start_core_services(world: &World) -> sixcast::Result<(Stratum0, Relay)> {
    let stratum0 = world
        .host("s0")
        .run(|| {
            let mut config = Stratum0Config::default();
            config.hop_limit = 8;
            Stratum0::spawn(config)
        })
        .map_err(|err| fail(format!("entering s0: {err}")))??;
    let relay = world
        .host("r1")
        .run(|| {
            let mut config = RelayConfig::default();
            config.hop_limit = 8;
            Relay::spawn(config)
        })
        .map_err(|err| fail(format!("entering r1: {err}")))??;
    Ok((stratum0, relay))
}

fn fail(message: String) -> sixcast::Error {
    sixcast::Error::new(ErrorKind::Unsupported, message)
}

/// Runs the demo again inside a new user, network and mount namespace, where this user is root
/// and a private /run lets `ip netns` work.
fn reexec_in_user_namespace() -> sixcast::Result<ExitCode> {
    let exe = std::env::current_exe().map_err(|err| sixcast::Error::io("finding sixcast", err))?;
    let err = Command::new("unshare")
        .args(["-rnm", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs tmpfs /run && exec "$0" demo"#)
        .arg(exe)
        .env(IN_USERNS, "1")
        .exec();
    Err(fail(format!(
        "not root, and entering an unprivileged user namespace with unshare(1) failed ({err}); \
         run as root or enable user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
    )))
}

/// Starts listeners on `receivers`, sends `messages` from `sender`, and prints what arrived.
/// With `stratum0`, every node may reach the core through a relay.
fn exchange(
    world: &World,
    sender: &str,
    receivers: &[&str],
    messages: &[Vec<u8>],
    stratum0: Option<SocketAddrV6>,
) -> sixcast::Result<()> {
    let (ready_tx, ready_rx) = mpsc::channel();
    // Every listener's window opens together, once the slowest has found its path: one that
    // found its own sooner must not stop listening before the sender starts.
    let go = Arc::new(Barrier::new(receivers.len() + 1));
    let listeners: Vec<(String, JoinHandle<sixcast::Result<Vec<Message>>>)> = receivers
        .iter()
        .map(|name| {
            let ready = ready_tx.clone();
            let go = Arc::clone(&go);
            let expected = messages.len();
            (
                name.to_string(),
                world
                    .host(name)
                    .spawn(move || listen(expected, stratum0, &ready, &go)),
            )
        })
        .collect();
    drop(ready_tx);
    for _ in receivers {
        ready_rx
            .recv_timeout(Duration::from_secs(15))
            .map_err(|_| fail("a listener did not start".into()))??;
    }
    go.wait();
    let host: &Host = world.host(sender);
    let to_send = messages.to_vec();
    let sent = host
        .spawn(move || -> sixcast::Result<()> {
            let context = Context::new(demo_config(stratum0))?;
            let channel = context.channel(CHANNEL)?;
            for message in &to_send {
                channel.send(message)?;
            }
            channel.flush()
        })
        .join()
        .map_err(|_| fail("the sender thread panicked".into()))?;
    sent?;
    println!(
        "  {sender} sent {} message(s) to channel {CHANNEL:?}:",
        messages.len()
    );
    for (name, listener) in listeners {
        let received = listener
            .join()
            .map_err(|_| fail(format!("listener {name} panicked")))??;
        if received.is_empty() {
            println!(
                "    {name}: nothing arrived within {} s",
                LISTEN_FOR.as_secs()
            );
        }
        for message in received {
            println!(
                "    {name}: seq {} {}: {}",
                message.seq,
                if message.relayed {
                    // The datagram's source is the relay; the sender is known by its node id.
                    format!(
                        "from node {} through the relay [{}]",
                        message.sender,
                        message.source.ip()
                    )
                } else {
                    format!(
                        "from [{}] via {}",
                        message.source.ip(),
                        message.interface_name
                    )
                },
                describe(&message.payload)
            );
        }
    }
    Ok(())
}

fn demo_config(stratum0: Option<SocketAddrV6>) -> Config {
    let mut config = Config::default();
    // Routed worlds have one router between segments.
    config.hop_limit = 8;
    config.stratum0 = stratum0;
    config
}

/// A listener on the current host: joins, reports readiness, collects until the time is up.
fn listen(
    expected: usize,
    stratum0: Option<SocketAddrV6>,
    ready: &mpsc::Sender<sixcast::Result<()>>,
    go: &Barrier,
) -> sixcast::Result<Vec<Message>> {
    let joined = Context::new(demo_config(stratum0)).and_then(|context| {
        let channel = context.channel(CHANNEL)?;
        channel.join()?;
        wait_for_path(&context);
        Ok((context, channel))
    });
    let (_context, channel) = match joined {
        Ok(joined) => {
            let _ = ready.send(Ok(()));
            go.wait();
            joined
        }
        Err(err) => {
            let _ = ready.send(Err(fail(format!("listener: {err}"))));
            return Err(err);
        }
    };
    let deadline = Instant::now() + LISTEN_FOR;
    let mut received = Vec::new();
    while received.len() < expected {
        match channel.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(message) => received.push(message),
            Err(err) if err.kind() == ErrorKind::Timeout => break,
            Err(err) => return Err(err),
        }
    }
    Ok(received)
}

/// With a Stratum 0, waits (at most 10 s) until the context knows its path to the core.
fn wait_for_path(context: &Context) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(reach) = context.reachability() {
        let settled = reach.relay.is_some()
            || reach.last_error.is_some()
            || reach.probe.as_ref().is_some_and(|probe| probe.native());
        if settled || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn describe(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok("") => "(an empty message)".into(),
        Ok(text) if text.len() <= 60 => format!("{text:?}"),
        _ => format!("{} bytes, arrived whole", payload.len()),
    }
}
