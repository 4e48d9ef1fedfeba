//! A host of a test world: a network namespace with one or more interfaces.

use std::{
    ffi::OsStr,
    net::Ipv6Addr,
    path::PathBuf,
    process::Command,
    sync::mpsc,
    thread::{self, JoinHandle},
};

use serde_json::{Value, json};

use crate::{NetlabError, Result, netns};

/// One network interface of a [`Host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub(crate) name: String,
    pub(crate) index: u32,
    pub(crate) addr: Ipv6Addr,
    pub(crate) link_local: Ipv6Addr,
    pub(crate) segment: String,
}

impl Interface {
    /// The interface's name inside its host (`eth0`, `eth1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface's index inside its host, for scope ids and multicast joins.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The interface's unique local address (prefix length 64).
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The interface's link-local address (`fe80::...`; needs [`Interface::index`] as scope id).
    pub fn link_local(&self) -> Ipv6Addr {
        self.link_local
    }

    /// The segment (link) the interface is attached to: `"lan"`, `"a"`, `"b"`, `"core"`,
    /// `"island"`, `"island-a"` or `"island-b"`.
    pub fn segment(&self) -> &str {
        &self.segment
    }

    fn to_json(&self) -> Value {
        json!({
            "ifname": self.name,
            "ifindex": self.index,
            "addr": self.addr.to_string(),
            "link_local": self.link_local.to_string(),
            "segment": self.segment,
        })
    }
}

/// A host of a [`crate::World`]: its own network namespace, with one interface (`eth0`), or one per
/// segment for the router (`eth0` on segment a or the core, `eth1` on segment b or the (first)
/// island, `eth2` on the second island of stratum2).
///
/// A clone stays usable only while its world exists; afterwards entering it fails with
/// [`NetlabError::EnterNamespace`].
#[derive(Debug, Clone)]
pub struct Host {
    pub(crate) name: String,
    pub(crate) netns: String,
    pub(crate) segment: String,
    /// Never empty: the first is the primary interface.
    pub(crate) interfaces: Vec<Interface>,
    pub(crate) ip: PathBuf,
}

impl Host {
    /// The host's name in its world (`h1`, `a2`, `r`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the host's network namespace (as listed by `ip netns list`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The path of the host's namespace file, for tools that take one (`nsenter --net=PATH`).
    pub fn netns_path(&self) -> PathBuf {
        netns::netns_path(&self.netns)
    }

    /// The host's segment: `"lan"`, `"a"`, `"b"`, `"core"`, `"island"`, `"island-a"` or
    /// `"island-b"`; always `"core"` for the router.
    pub fn segment(&self) -> &str {
        &self.segment
    }

    /// All of the host's interfaces, primary first.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn primary(&self) -> &Interface {
        // The world only builds hosts with at least one interface.
        &self.interfaces[0]
    }

    /// The primary interface's name (`eth0`).
    pub fn ifname(&self) -> &str {
        &self.primary().name
    }

    /// The primary interface's index.
    pub fn ifindex(&self) -> u32 {
        self.primary().index
    }

    /// The primary interface's unique local address, e.g. `fd5c:a::11`.
    pub fn addr(&self) -> Ipv6Addr {
        self.primary().addr
    }

    /// The primary interface's link-local address, e.g. `fe80::11`.
    pub fn link_local(&self) -> Ipv6Addr {
        self.primary().link_local
    }

    /// Runs `f` on a new thread that has entered this host's network namespace (`setns` on that
    /// thread only); sockets it creates belong to the host, also after they are moved elsewhere.
    ///
    /// # Panics
    ///
    /// If the namespace cannot be entered (its world is gone). Use [`Host::try_spawn`] to get
    /// that as an error instead.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.try_spawn(f) {
            Ok(handle) => handle,
            Err(err) => panic!("cannot start a thread in host {}: {err}", self.name),
        }
    }

    /// Like [`Host::spawn`], but reports a namespace that cannot be entered as an error.
    pub fn try_spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let namespace = netns::open(&self.netns)?;
        let netns_name = self.netns.clone();
        let (entered_tx, entered_rx) = mpsc::sync_channel(1);
        let handle = thread::Builder::new()
            .name(format!("netlab-{}", self.name))
            .spawn(move || {
                let entered = netns::set_thread_netns(&namespace);
                drop(namespace);
                let failed = entered.is_err();
                let _ = entered_tx.send(entered);
                if failed {
                    // Never run `f` outside the host; resume_unwind ends the thread without
                    // printing a panic message (the caller gets the error instead).
                    std::panic::resume_unwind(Box::new("namespace not entered"));
                }
                f()
            })
            .map_err(|source| NetlabError::io("cannot start a thread", source))?;
        match entered_rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(source)) => Err(NetlabError::EnterNamespace {
                netns: netns_name,
                source,
            }),
            Err(_) => Err(NetlabError::EnterNamespace {
                netns: netns_name,
                source: std::io::Error::other("the thread ended before entering the namespace"),
            }),
        }
    }

    /// Runs `f` on the current thread inside this host's namespace and switches back before
    /// returning (also if `f` panics). Sockets `f` creates belong to the host. Threads that `f`
    /// starts stay in the host's namespace.
    pub fn run<F: FnOnce() -> T, T>(&self, f: F) -> Result<T> {
        let _inside = netns::NetnsGuard::enter(&self.netns)?;
        Ok(f())
    }

    /// A command that runs `program` in this host (`ip netns exec NETNS program`), for processes
    /// such as CLI tests or other languages' test programs. Processes still running in the host
    /// when its world is torn down are killed; one still starting at that moment (not yet inside
    /// the namespace) can escape, so do not start processes concurrently with teardown.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(&self.ip);
        command
            .arg("netns")
            .arg("exec")
            .arg(&self.netns)
            .arg(program);
        command
    }

    /// Whether the primary interface is operationally up (it stays up during a silent cut).
    pub fn link_is_up(&self) -> Result<bool> {
        let ifname = self.ifname().to_owned();
        let flags = self
            .run(|| netns::interface_flags(&ifname))?
            .map_err(|source| {
                NetlabError::io(format!("cannot read the flags of {ifname}"), source)
            })?;
        Ok(flags & libc::IFF_RUNNING != 0)
    }

    /// The host as JSON: `{name, netns, ifname, ifindex, addr, link_local, segment, interfaces}`.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "netns": self.netns,
            "ifname": self.ifname(),
            "ifindex": self.ifindex(),
            "addr": self.addr().to_string(),
            "link_local": self.link_local().to_string(),
            "segment": self.segment,
            "interfaces": self.interfaces.iter().map(Interface::to_json).collect::<Vec<_>>(),
        })
    }
}
