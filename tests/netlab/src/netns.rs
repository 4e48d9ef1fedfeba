//! Low-level network-namespace operations done with system calls rather than processes: entering
//! namespaces per thread, sysctls, interface flags, finding and killing processes, deleting.

use std::{
    ffi::CString,
    fs::{self, File},
    io,
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::{ffi::OsStrExt, fs::MetadataExt},
    },
    path::{Path, PathBuf},
};

use crate::{NetlabError, Result};

/// Where `ip netns` keeps its named namespaces.
pub(crate) const NETNS_DIR: &str = "/run/netns";

/// The path of named namespace `name`.
pub(crate) fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Opens named namespace `name` for `setns`.
pub(crate) fn open(name: &str) -> Result<File> {
    File::open(netns_path(name)).map_err(|source| NetlabError::EnterNamespace {
        netns: name.to_owned(),
        source,
    })
}

/// Moves the calling thread (only) into the network namespace `namespace`.
pub(crate) fn set_thread_netns(namespace: &File) -> io::Result<()> {
    // SAFETY: setns(2) with a valid descriptor; CLONE_NEWNET changes only this thread.
    let rc = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Enters named namespace `name` on the calling thread, for threads that stay there.
pub(crate) fn enter(name: &str) -> Result<()> {
    let namespace = open(name)?;
    set_thread_netns(&namespace).map_err(|source| NetlabError::EnterNamespace {
        netns: name.to_owned(),
        source,
    })
}

/// While alive, the calling thread is in another namespace; dropping it switches back, also
/// when the code in between panics.
pub(crate) struct NetnsGuard {
    original: File,
}

impl NetnsGuard {
    /// Enters named namespace `name` on the calling thread until the guard is dropped.
    pub(crate) fn enter(name: &str) -> Result<Self> {
        let original = File::open("/proc/thread-self/ns/net").map_err(|source| {
            NetlabError::io("cannot open this thread's network namespace", source)
        })?;
        enter(name)?;
        Ok(Self { original })
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(err) = set_thread_netns(&self.original) {
            // Returning would leave this thread silently in a test host's namespace, where later
            // code would open sockets on the wrong network; stopping is the only safe outcome.
            eprintln!("sixcast-netlab: cannot switch this thread back to its namespace: {err}");
            std::process::abort();
        }
    }
}

/// Writes sysctl `name` (dotted, e.g. `net.ipv6.conf.all.forwarding`) for the calling thread's
/// network namespace.
pub(crate) fn write_sysctl(name: &str, value: &str) -> io::Result<()> {
    // /proc/sys/net resolves against the opening thread's namespace, so no process is needed.
    fs::write(Path::new("/proc/sys").join(name.replace('.', "/")), value)
}

fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn interface_request(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid interface name"),
        ));
    }
    // SAFETY: ifreq is plain old data for which all-zero bytes are a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}

/// The `IFF_*` flags of interface `name` in the calling thread's namespace.
pub(crate) fn interface_flags(name: &str) -> io::Result<libc::c_int> {
    let socket = control_socket()?;
    let mut request = interface_request(name)?;
    // SAFETY: SIOCGIFFLAGS reads and writes one ifreq, which we own.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFFLAGS the union holds the flags.
    Ok(libc::c_int::from(unsafe { request.ifr_ifru.ifru_flags }))
}

/// Sets interface `name` administratively up in the calling thread's namespace.
pub(crate) fn set_interface_up(name: &str) -> io::Result<()> {
    set_interface_flag(name, libc::IFF_UP, true)
}

/// Sets (`on`) or clears one `IFF_*` flag of interface `name` in the calling thread's namespace.
pub(crate) fn set_interface_flag(name: &str, flag: libc::c_int, on: bool) -> io::Result<()> {
    let socket = control_socket()?;
    let mut request = interface_request(name)?;
    // The flags field is a C short; every flag this is used for fits it.
    let flag = flag as libc::c_short;
    // SAFETY: SIOCGIFFLAGS / SIOCSIFFLAGS read and write one ifreq, which we own.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
        if on {
            request.ifr_ifru.ifru_flags |= flag;
        } else {
            request.ifr_ifru.ifru_flags &= !flag;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS as _, &request) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The Ethernet address of interface `name` in the calling thread's namespace.
pub(crate) fn interface_mac(name: &str) -> io::Result<[u8; 6]> {
    let socket = control_socket()?;
    let mut request = interface_request(name)?;
    // SAFETY: SIOCGIFHWADDR reads and writes one ifreq, which we own.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut request) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after SIOCGIFHWADDR the union holds the hardware address.
    let data = unsafe { request.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0; 6];
    for (byte, value) in mac.iter_mut().zip(data) {
        *byte = value as u8;
    }
    Ok(mac)
}

/// The index of interface `name` in the calling thread's namespace.
pub(crate) fn interface_index(name: &str) -> io::Result<u32> {
    let c_name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name contains NUL"))?;
    // SAFETY: a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}

/// Whether `addr` can be bound now (it fails while an address is missing or tentative).
pub(crate) fn address_usable(addr: Ipv6Addr, scope_id: u32) -> io::Result<()> {
    UdpSocket::bind(SocketAddrV6::new(addr, 0, 0, scope_id)).map(drop)
}

/// The identity (device and inode) of a namespace file.
type NamespaceId = (u64, u64);

fn namespace_id(path: &Path) -> io::Result<NamespaceId> {
    let meta = fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

/// Processes (other than this one) whose network namespace is one of `names`.
pub(crate) fn processes_in(names: &[&str]) -> Vec<libc::pid_t> {
    // Never the caller's own or the init namespace, whatever a namespace file points to: the
    // harness must not kill processes outside the worlds.
    let protected: Vec<NamespaceId> = ["/proc/self/ns/net", "/proc/1/ns/net"]
        .iter()
        .filter_map(|path| namespace_id(Path::new(path)).ok())
        .collect();
    let wanted: Vec<NamespaceId> = names
        .iter()
        .filter_map(|name| namespace_id(&netns_path(name)).ok())
        .filter(|id| !protected.contains(id))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let own_pid = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own_pid)
        .filter(|pid| {
            // Processes exit while we scan; those simply drop out.
            namespace_id(Path::new(&format!("/proc/{pid}/ns/net")))
                .is_ok_and(|id| wanted.contains(&id))
        })
        .filter_map(|pid| libc::pid_t::try_from(pid).ok())
        .collect()
}

/// SIGKILLs every process in `names` and waits (bounded) until none is left.
pub(crate) fn kill_processes_in(names: &[&str], timeout: std::time::Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let pids = processes_in(names);
        if pids.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(NetlabError::NotReady {
                what: "killing the processes in the world's namespaces".into(),
                timeout,
                detail: format!("still running: {pids:?}"),
            });
        }
        for pid in &pids {
            tracing::debug!(pid, "killing process left in a test namespace");
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Deletes named namespace `name` like `ip netns del` (detach the bind mount, remove the file).
/// A namespace that does not exist counts as deleted.
pub(crate) fn delete(name: &str) -> Result<()> {
    let path = netns_path(name);
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        NetlabError::InvalidArgument(format!("namespace name {name:?} contains NUL"))
    })?;
    // SAFETY: a valid NUL-terminated path. Failure (not mounted, e.g. half-created) is fine:
    // removing the file below is what matters then.
    unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) };
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetlabError::io(
            format!("cannot delete namespace {name}"),
            source,
        )),
    }
}

/// Whether process `pid` exists.
pub(crate) fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
