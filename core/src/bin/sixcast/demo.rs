//! `sixcast demo`: builds throw-away network-namespace worlds, runs sixcast nodes in them (one
//! thread per host, each inside its host's namespace) and prints what arrived where.

use std::{
    os::unix::process::CommandExt,
    process::{Command, ExitCode},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use sixcast::{Config, Context, ErrorKind, Message};
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
    exchange(&world, "h1", &["h2", "h3"], &messages)?;
    drop(world);

    match sixcast_netlab::check_environment(true) {
        Ok(()) => {
            let world = World::routed_mcast()
                .map_err(|err| fail(format!("building the routed world: {err}")))?;
            println!(
                "\nWorld 2: two segments joined by a router that routes multicast (smcroute)."
            );
            exchange(&world, "a1", &["a2", "b1"], &messages[..2])?;
        }
        Err(reason) => println!("\nWorld 2 (multicast routing) skipped: {reason}"),
    }

    let world = World::routed_nomcast()
        .map_err(|err| fail(format!("building the unicast-only world: {err}")))?;
    println!("\nWorld 3: the same two segments, but the router forwards unicast only.");
    exchange(&world, "a1", &["a2", "b1"], &messages[..2])?;
    println!("\nHosts behind a router without multicast routing hear nothing natively;");
    println!("on such networks sixcast is meant to fall back to unicast relays.");
    Ok(ExitCode::SUCCESS)
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
fn exchange(
    world: &World,
    sender: &str,
    receivers: &[&str],
    messages: &[Vec<u8>],
) -> sixcast::Result<()> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let listeners: Vec<(String, JoinHandle<sixcast::Result<Vec<Message>>>)> = receivers
        .iter()
        .map(|name| {
            let ready = ready_tx.clone();
            let expected = messages.len();
            (
                name.to_string(),
                world.host(name).spawn(move || listen(expected, &ready)),
            )
        })
        .collect();
    drop(ready_tx);
    for _ in receivers {
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| fail("a listener did not start".into()))??;
    }
    let host: &Host = world.host(sender);
    let to_send = messages.to_vec();
    let sent = host
        .spawn(move || -> sixcast::Result<()> {
            let context = Context::new(demo_config())?;
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
                "    {name}: seq {} from [{}] via {}: {}",
                message.seq,
                message.source.ip(),
                message.interface_name,
                describe(&message.payload)
            );
        }
    }
    Ok(())
}

fn demo_config() -> Config {
    let mut config = Config::default();
    // Routed worlds have one router between segments.
    config.hop_limit = 8;
    config
}

/// A listener on the current host: joins, reports readiness, collects until the time is up.
fn listen(
    expected: usize,
    ready: &mpsc::Sender<sixcast::Result<()>>,
) -> sixcast::Result<Vec<Message>> {
    let joined = Context::new(demo_config()).and_then(|context| {
        let channel = context.channel(CHANNEL)?;
        channel.join()?;
        Ok((context, channel))
    });
    let (_context, channel) = match joined {
        Ok(joined) => {
            let _ = ready.send(Ok(()));
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

fn describe(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok("") => "(an empty message)".into(),
        Ok(text) if text.len() <= 60 => format!("{text:?}"),
        _ => format!("{} bytes, arrived whole", payload.len()),
    }
}
