//! # sixcast-netlab
//!
//! Disposable IPv6 test worlds made of Linux network namespaces, for testing sixcast with real
//! multicast between real (emulated) hosts.
//!
//! A [`World`] is a set of [`Host`]s, each in its own network namespace with a veth interface
//! (`eth0`) cabled to a Linux bridge in a separate switch namespace:
//!
//! - [`World::lan`]: hosts `h1`..`hN` on one segment.
//! - [`World::routed_mcast`]: segments a (`a1`, `a2`) and b (`b1`, `b2`) joined by router `r`,
//!   which forwards unicast and multicast ([`ROUTED_GROUP_PREFIXES`]).
//! - [`World::routed_nomcast`]: the same, with a router that forwards unicast only.
//! - [`World::routed_ssm`]: the same, with a router that forwards unicast and only
//!   source-specific multicast ([`SSM_GROUP_PREFIX`], from each segment's own hosts).
//! - [`World::stratum`]: a core segment (Stratum 0 `s0`, relays `r1`, `r2`, hosts `c1`, `c2`) and
//!   an island (`i1`, `i2`) behind router `r`, which forwards unicast only until
//!   [`World::set_router_multicast`] switches multicast routing on.
//! - [`World::stratum2`]: the same core and two islands (`i1`, `i2` and `j1`, `j2`) behind one
//!   three-legged router `r`.
//!
//! The address plan is documented on [`Topology`].
//!
//! ## Multicast routing
//!
//! A router that routes multicast runs smcroute where the kernel has IPv6 multicast routing
//! and smcroute is installed, and the harness's own user-space router everywhere else (many
//! VM and container kernels lack multicast routing). Both forward by the same routes, as a
//! router does: the hop limit drops by one per hop and a packet that arrives with hop limit 1
//! stays; link-scope groups never cross; nothing goes back out of the leg it came in on.
//! [`multicast_router_choice`] says which one worlds use and why, and [`MROUTER_ENV`]
//! (`SIXCAST_NETLAB_MROUTER=smcroute|user-space|auto`) forces either.
//!
//! Code enters a host with [`Host::spawn`] (a thread inside the host), [`Host::run`] (the current
//! thread, briefly) or [`Host::command`] (a process inside the host). Nothing is configured in
//! the caller's own namespace, and dropping the world removes everything it made.
//!
//! ```no_run
//! use std::net::{SocketAddrV6, UdpSocket};
//!
//! if let Err(reason) = sixcast_netlab::check_environment(false) {
//!     eprintln!("skipped: {reason}");
//!     return Ok(());
//! }
//! let world = sixcast_netlab::World::lan(2)?;
//! let (h1, h2) = (world.host("h1"), world.host("h2"));
//! let receiver = h2.run(|| UdpSocket::bind(SocketAddrV6::new(h2.addr(), 5000, 0, 0)))??;
//! let sender = h1.run(|| UdpSocket::bind(SocketAddrV6::new(h1.addr(), 0, 0, 0)))??;
//! sender.send_to(b"hello", SocketAddrV6::new(h2.addr(), 5000, 0, 0))?;
//! let mut buffer = [0; 16];
//! let (len, _) = receiver.recv_from(&mut buffer)?;
//! assert_eq!(&buffer[..len], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Timing
//!
//! Measured on the project's 2-core machine: a 3-host LAN comes up in ~15-70 ms, routed-nomcast
//! in ~20-120 ms, routed-mcast and routed-ssm (with smcroute) in ~45-110 ms, stratum in
//! ~25-110 ms, stratum2 in ~30-130 ms; teardown takes a few ms. [`World::set_router_multicast`]
//! takes ~25 ms to switch on with smcroute and ~6 ms with the user-space router (the first
//! datagram crosses right after it returns), and ~1 ms (smcroute) or ~18 ms (user-space) to
//! switch off. Routed-mcast and routed-ssm with the user-space router take ~40-150 ms to build
//! and tear down.
//!
//! The user-space router (a debug build, as the tests run it) forwarded 200,000 1 KiB
//! datagrams a second, sent in UDP GSO runs, without loss; a release build also 170,000 lone
//! 64-byte datagrams a second with 1.4 % loss (none at 100,000). Tests that need more than
//! that through a router measure the harness, not sixcast.
//!
//! ## The `sixcast-netlab` binary
//!
//! For tests in other languages: `sixcast-netlab run <topology> -- <command> [args..]` (a
//! topology name as [`Topology::from_str`](std::str::FromStr) parses it) builds the world, runs the command with the world's JSON
//! ([`World::to_json`]) in `SIXCAST_WORLD` and in the file named by `SIXCAST_WORLD_FILE`, tears
//! the world down (also on SIGINT/SIGTERM/SIGHUP) and exits with the command's code.
//! `sixcast-netlab check [topology]` prints `ok` (exit 0) or `skip: <reason>` (exit 77); after
//! `ok`, which multicast router the worlds' routers use on this machine, and why.
//!
//! ## Requirements
//!
//! Needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root, or rootless under
//! `unshare -rnm --propagation private` with a tmpfs mounted on `/run`) and iproute2; smcroute is
//! used where the kernel routes IPv6 multicast, and needed only when [`MROUTER_ENV`] forces it.
//! [`check_environment`] says whether the machine can, and why not.

mod error;
mod exec;
mod host;
mod mroute;
mod netns;
mod packet_router;
mod router;
mod smcroute;
mod topology;
mod world;

use std::{ffi::OsStr, fs, path::Path, thread};

pub use error::{NetlabError, Result};
pub use host::{Host, Interface};
pub use mroute::ForwardingStats;
pub use router::{
    MROUTER_ENV, MulticastRouterChoice, MulticastRouterKind, multicast_router_choice,
};
pub use topology::{
    DEFAULT_LAN_HOSTS, MAX_LAN_HOSTS, ROUTED_GROUP_PREFIXES, SSM_GROUP_PREFIX,
    STRATUM_GROUP_PREFIXES, Topology,
};
pub use world::{NAME_PREFIX, World};

/// Capability bits as numbered in `/proc/self/status`.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Says whether this machine and process can build worlds: `Ok`, or the reason to skip.
///
/// Checks the capabilities, a writable `/run/netns`, that a network namespace can be created,
/// that iproute2 works, and, if `routes_multicast` (the topology's router routes multicast; see
/// [`Topology::routes_multicast`]), that the multicast router [`multicast_router_choice`] picks
/// can run: smcroute is installed, or a namespace can open packet sockets.
pub fn check_environment(routes_multicast: bool) -> Result<(), String> {
    environment_problem(routes_multicast).map_or(Ok(()), |err| Err(err.to_string()))
}

fn environment_problem(routes_multicast: bool) -> Option<NetlabError> {
    let unsupported = |reason: String| Some(NetlabError::Unsupported { reason });
    if !Path::new("/proc/self/ns/net").exists() {
        return unsupported(
            "the kernel has no network namespaces (/proc/self/ns/net is missing)".into(),
        );
    }
    let missing: Vec<&str> = [
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| !has_capability(*bit))
    .map(|(_, name)| name)
    .collect();
    if !missing.is_empty() {
        return unsupported(format!(
            "this process lacks {}; run as root, or rootless under \
             `unshare -rnm --propagation private` with a tmpfs mounted on /run",
            missing.join(" and ")
        ));
    }
    if let Some(reason) = netns_dir_problem() {
        return unsupported(reason);
    }
    let ip = match exec::require(exec::IP) {
        Ok(ip) => ip,
        Err(err) => return Some(err),
    };
    if let Err(err) = exec::runs(&ip, &[OsStr::new("-V")]) {
        return unsupported(format!("iproute2's `ip` does not run: {err}"));
    }
    let choice = if routes_multicast {
        match multicast_router_choice() {
            Ok(choice) => Some(choice.kind),
            Err(err) => return Some(err),
        }
    } else {
        None
    };
    let needs_packet_sockets = choice == Some(MulticastRouterKind::UserSpace);
    if let Some(reason) = namespace_creation_problem(needs_packet_sockets) {
        return unsupported(reason);
    }
    None
}

fn has_capability(bit: u32) -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

/// Why `ip netns add` could not create its files, if it could not.
fn netns_dir_problem() -> Option<String> {
    // `ip` creates /run/netns when missing, which needs /run to be writable instead.
    let dir = [Path::new(netns::NETNS_DIR), Path::new("/run")]
        .into_iter()
        .find(|dir| dir.exists())?;
    let Ok(c_dir) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return None;
    };
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::access(c_dir.as_ptr(), libc::W_OK) } == 0 {
        return None;
    }
    Some(format!(
        "{} is not writable, so `ip netns add` cannot work; when rootless, mount a tmpfs on /run \
         inside `unshare -rnm --propagation private` ({})",
        dir.display(),
        std::io::Error::last_os_error()
    ))
}

/// Tries to create a throwaway network namespace on a scratch thread and, if
/// `with_packet_sockets`, to open a packet socket in it (the user-space multicast router's).
fn namespace_creation_problem(with_packet_sockets: bool) -> Option<String> {
    thread::spawn(move || {
        // SAFETY: unshare(2) of the network namespace affects only this scratch thread, which
        // ends right after (and its namespace with it).
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Some(format!(
                "cannot create a network namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
        if !with_packet_sockets {
            return None;
        }
        // SAFETY: plain socket(2) call; a descriptor it returns is closed right away.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Some(format!(
                "cannot open a packet socket for the user-space multicast router (it needs \
                 CAP_NET_RAW): {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: closes the descriptor just opened, which nothing else uses.
        unsafe { libc::close(fd) };
        None
    })
    .join()
    .unwrap_or_else(|_| Some("the namespace probe thread failed".into()))
}

/// Removes what dead harness processes left behind: namespaces named `sxnl-<pid>-...` (after
/// killing the processes in them) and state directories of the same name, for every `<pid>` that
/// no longer runs. Never touches anything of a live process. Returns the removed names.
///
/// [`World::build`] calls this; call it directly to clean up without building a world.
pub fn sweep_leftovers() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut first_error = None;
    let dead_leftovers = |dir: &Path| -> Vec<String> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| leftover_of_dead_process(name))
            .collect()
    };
    let namespaces = dead_leftovers(Path::new(netns::NETNS_DIR));
    if !namespaces.is_empty() {
        let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
        if let Err(err) = netns::kill_processes_in(&names, std::time::Duration::from_secs(2)) {
            first_error.get_or_insert(err);
        }
        for name in namespaces {
            match netns::delete(&name) {
                Ok(()) => removed.push(name),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
    }
    let temp_dir = std::env::temp_dir();
    for name in dead_leftovers(&temp_dir) {
        match fs::remove_dir_all(temp_dir.join(&name)) {
            Ok(()) => removed.push(name),
            // Another process's sweep may have been faster, or (rootless) the directory belongs to
            // another user's run; neither is ours to report.
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) => {}
            Err(source) => {
                first_error.get_or_insert(NetlabError::io(format!("cannot remove {name}"), source));
            }
        }
    }
    if !removed.is_empty() {
        tracing::info!(?removed, "swept leftovers of dead test processes");
    }
    first_error.map_or(Ok(removed), Err)
}

/// Whether `name` is `sxnl-<pid>-...` with a `<pid>` that is neither this process nor alive.
fn leftover_of_dead_process(name: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(NAME_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<libc::pid_t>().ok())
    else {
        return false;
    };
    pid > 0 && u32::try_from(pid).ok() != Some(std::process::id()) && !netns::process_exists(pid)
}
