//! A real DNS server (dnsmasq, from Debian's `dnsmasq-base`) inside a world's host, serving the
//! SRV and AAAA records a test names. Everything is on the command line, so no file is left
//! behind; the process is killed when the [`Dnsmasq`] is dropped (also when a test fails).

use std::{
    io::{BufRead, BufReader},
    net::{Ipv6Addr, SocketAddr},
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use super::World;

/// One `_sixcast._udp.<domain>` SRV record.
pub(crate) struct Srv<'a> {
    pub(crate) priority: u16,
    pub(crate) weight: u16,
    pub(crate) port: u16,
    pub(crate) target: &'a str,
}

/// A running dnsmasq, killed on drop.
pub(crate) struct Dnsmasq {
    child: Child,
    /// Where it answers.
    pub(crate) server: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The dnsmasq binary, if installed (it lives in sbin, often not on a test's PATH).
fn dnsmasq_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("dnsmasq"))
        .find(|candidate| candidate.is_file())
}

/// Starts dnsmasq on `host` of `world`, at the host's address and `port`, authoritative for
/// `domain`: the SRV records `srv` of `_sixcast._udp.<domain>` and the AAAA records `hosts`.
/// `None` (after saying why) when dnsmasq is not installed; in CI that is a failure.
pub(crate) fn dnsmasq(
    world: &World,
    host: &str,
    port: u16,
    domain: &str,
    srv: &[Srv<'_>],
    hosts: &[(&str, Ipv6Addr)],
) -> Option<Dnsmasq> {
    let Some(binary) = dnsmasq_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have dnsmasq (Debian package dnsmasq-base) for the DNS discovery tests"
        );
        eprintln!("skipped: dnsmasq is not installed (Debian package dnsmasq-base)");
        return None;
    };
    let address = world.host(host).addr();
    let mut command = world.host(host).command(binary);
    command.args([
        // In the foreground, without dropping privileges: inside a user namespace (tests/run
        // without root) dnsmasq could not change its group.
        "--no-daemon",
        "--conf-file=/dev/null",
        "--log-facility=-",
        "--pid-file=",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--except-interface=lo",
    ]);
    command.arg(format!("--listen-address={address}"));
    command.arg(format!("--port={port}"));
    // Answer every other name of the domain from here (NXDOMAIN), never forward.
    command.arg(format!("--local=/{domain}/"));
    for record in srv {
        command.arg(format!(
            "--srv-host=_sixcast._udp.{domain},{},{},{},{}",
            record.target, record.port, record.priority, record.weight
        ));
    }
    for (name, address) in hosts {
        command.arg(format!("--host-record={name},{address}"));
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dnsmasq");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut said = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut line = String::new();
    // dnsmasq says "started" once it listens, or why it stopped.
    while Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.wait();
            panic!("dnsmasq stopped: {said}");
        }
        said.push_str(&line);
        if line.contains("started") {
            break;
        }
    }
    // Keep draining, so that dnsmasq never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Some(Dnsmasq {
        child,
        server: SocketAddr::new(address.into(), port),
    })
}
