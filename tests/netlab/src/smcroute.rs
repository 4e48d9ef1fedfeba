//! smcroute in a world's router: the kernel forwards multicast by the routes smcroute installs.
//! Only for kernels built with IPv6 multicast routing (see [`crate::router`]).

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{Host, NetlabError, Result, exec, mroute::Mroute};

/// How long smcroute may take to start and install its routes.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the daemon gets to exit, and the kernel to flush its routes after it.
const EXIT_TIMEOUT: Duration = Duration::from_secs(2);
/// The sysctl that is 1 while a multicast routing daemon holds the kernel's routing socket.
const MC_FORWARDING: &str = "/proc/sys/net/ipv6/conf/all/mc_forwarding";

/// Whether this kernel can route IPv6 multicast (it has the sysctl only if it can).
pub(crate) fn kernel_routes_multicast() -> bool {
    Path::new(MC_FORWARDING).exists()
}

/// A running smcroute daemon in the router. Dropping it stops the daemon.
#[derive(Debug)]
pub(crate) struct Smcroute {
    child: Child,
    log: PathBuf,
}

impl Drop for Smcroute {
    fn drop(&mut self) {
        // `stop` reports failures; this covers every other path (a failed start, a panic).
        let _ = exec::terminate(&mut self.child, EXIT_TIMEOUT);
    }
}

impl Smcroute {
    /// Starts smcroute in `router` with `routes`, its files in `state_dir` and `ident` as its
    /// identity, and waits until it lists all its routes. On failure the daemon is stopped again.
    pub(crate) fn start(
        router: &Host,
        routes: &[Mroute],
        state_dir: &Path,
        ident: &str,
    ) -> Result<Self> {
        let smcrouted = exec::require(exec::SMCROUTED)?;
        let smcroutectl = exec::require(exec::SMCROUTECTL)?;
        let mut config = String::new();
        for interface in router.interfaces() {
            config.push_str(&format!("phyint {} enable\n", interface.name()));
        }
        for route in routes {
            config.push_str(&route.conf_line());
            config.push('\n');
        }
        let file = |name: &str| state_dir.join(name);
        let (config_path, socket, log, pid_file) = (
            file("smcroute.conf"),
            file("smcroute.sock"),
            file("smcroute.log"),
            file("smcroute.pid"),
        );
        // A daemon stopped earlier may have left its socket behind.
        for stale in [&socket, &pid_file] {
            match fs::remove_file(stale) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(NetlabError::io(
                        format!("cannot remove {}", stale.display()),
                        err,
                    ));
                }
                _ => {}
            }
        }
        fs::write(&config_path, config).map_err(|source| {
            NetlabError::io(format!("cannot write {}", config_path.display()), source)
        })?;
        let log_file = fs::File::create(&log).map_err(|source| {
            NetlabError::io(format!("cannot create {}", log.display()), source)
        })?;
        let log_clone = log_file
            .try_clone()
            .map_err(|source| NetlabError::io("cannot duplicate the smcroute log", source))?;
        // Own socket, pid file and ident per instance, or parallel worlds' daemons collide; -N so
        // only the interfaces named in the config become multicast interfaces.
        let mut command = router.command(&smcrouted);
        command
            .args(["-n", "-N", "-l", "notice", "-i", ident, "-f"])
            .arg(&config_path)
            .arg("-u")
            .arg(&socket)
            .arg("-P")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_clone);
        let description = exec::describe(&command);
        let child = command
            .spawn()
            .map_err(|source| NetlabError::io(format!("cannot start `{description}`"), source))?;
        // From here on, an early return drops (and so stops) the daemon.
        let mut smcroute = Self {
            child,
            log: log.clone(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = smcroute.child.try_wait() {
                return Err(smcroute.not_ready(format!("it exited ({status})")));
            }
            let mut show = Command::new(&smcroutectl);
            show.args(["-p", "-t", "-i", ident, "-u"])
                .arg(&socket)
                .args(["show", "routes"]);
            // Until the daemon listens, smcroutectl fails; that is the normal start-up state.
            let last_seen = match exec::run(show, None, Duration::from_secs(2)) {
                Ok(listing) => {
                    let installed = count_listed_routes(&listing, routes);
                    if installed == routes.len() {
                        return Ok(smcroute);
                    }
                    format!(
                        "{installed} of {} routes installed: {listing}",
                        routes.len()
                    )
                }
                Err(err) => err.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(smcroute.not_ready(last_seen));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the daemon still runs.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the daemon and waits until `router`'s kernel no longer forwards multicast (no
    /// multicast routing socket is open, so the kernel has flushed its routes).
    pub(crate) fn stop(mut self, router: &Host) -> Result<()> {
        exec::terminate(&mut self.child, EXIT_TIMEOUT)
            .map_err(|source| NetlabError::io("cannot stop smcroute", source))?;
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            let value = router
                .run(|| fs::read_to_string(MC_FORWARDING))?
                .map_err(|source| {
                    NetlabError::io(format!("cannot read {MC_FORWARDING}"), source)
                })?;
            if value.trim() == "0" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(NetlabError::NotReady {
                    what: "the router without multicast routing".into(),
                    timeout: EXIT_TIMEOUT,
                    detail: format!("{MC_FORWARDING} is still {}", value.trim()),
                });
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn not_ready(&self, detail: String) -> NetlabError {
        NetlabError::NotReady {
            what: "smcroute in the router".into(),
            timeout: READY_TIMEOUT,
            detail: format!("{detail}; its log: {}", read_log(&self.log)),
        }
    }
}

/// How many of `routes` `smcroutectl -p -t show routes` lists. It prints one line per configured
/// route, `(SOURCE, GROUP) IIF OIF..` with SOURCE `*` for any-source routes, followed by the kernel's
/// (S,G) entries learnt from traffic, which must not count.
fn count_listed_routes(listing: &str, routes: &[Mroute]) -> usize {
    let listed: Vec<Vec<&str>> = listing
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    routes
        .iter()
        .filter(|route| {
            let source = format!(
                "({},",
                route
                    .source
                    .map_or_else(|| "*".to_owned(), |source| source.to_string())
            );
            let group = format!("{})", route.group);
            let mut expected = vec![source.as_str(), group.as_str(), route.from.as_str()];
            expected.extend(route.to.iter().map(String::as_str));
            listed.contains(&expected)
        })
        .count()
}

fn read_log(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
        Ok(_) => "(empty)".into(),
        Err(err) => format!("(unreadable: {err})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(from: &str, source: Option<&str>, group: &str, to: &str) -> Mroute {
        Mroute {
            from: from.into(),
            source: source.map(|source| source.parse().unwrap()),
            group: group.parse().unwrap(),
            to: vec![to.into()],
        }
    }

    #[test]
    fn only_configured_routes_count_as_installed() {
        // `smcroutectl -p -t show routes` of smcroute 2.5.6, after traffic created kernel entries.
        let listing = "\
(*, ff15::/16)                             eth0  eth1
(*, ff15::/16)                             eth1  eth0
(fd5c:a::/64, ff3e::/32)                   eth0  eth1
(fd5c:a::11, ff1e::99)                     eth0  eth1
(fd5c:a::11, ff15::98)                     eth0  eth1
";
        let routes = [
            route("eth0", None, "ff15::/16", "eth1"),
            route("eth1", None, "ff15::/16", "eth0"),
            route("eth0", Some("fd5c:a::/64"), "ff3e::/32", "eth1"),
            route("eth1", Some("fd5c:b::/64"), "ff3e::/32", "eth0"),
            route("eth0", None, "ff1e::/16", "eth1"),
        ];
        assert_eq!(count_listed_routes(listing, &routes), 3);
        assert_eq!(count_listed_routes(listing, &routes[..3]), 3);
        assert_eq!(count_listed_routes("", &routes), 0);
    }
}
