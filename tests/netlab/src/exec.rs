//! Finding and running the external programs the harness drives (`ip`, `smcrouted`, `nft`), always
//! with a deadline.

use std::{
    ffi::{CStr, OsStr},
    fs::File,
    io::{self, Read, Seek, SeekFrom, Write},
    os::{fd::FromRawFd, unix::fs::PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{NetlabError, Result};

/// How long one `ip` (or similar) invocation may take; they normally take milliseconds.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Directories searched after `PATH`: non-root `PATH`s often lack the sbin directories where
/// iproute2 and smcroute live.
const FALLBACK_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// An external program and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    pub(crate) name: &'static str,
    pub(crate) package: &'static str,
}

pub(crate) const IP: Tool = Tool {
    name: "ip",
    package: "iproute2",
};
pub(crate) const BRIDGE: Tool = Tool {
    name: "bridge",
    package: "iproute2",
};
pub(crate) const SMCROUTED: Tool = Tool {
    name: "smcrouted",
    package: "smcroute",
};
pub(crate) const SMCROUTECTL: Tool = Tool {
    name: "smcroutectl",
    package: "smcroute",
};
pub(crate) const NFT: Tool = Tool {
    name: "nft",
    package: "nftables",
};

/// The full path of `tool`, or `None` if it is not installed.
pub(crate) fn find(tool: Tool) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(tool.name))
        .find(|candidate| is_executable(candidate))
}

/// The full path of `tool`, or an error that says which package to install.
pub(crate) fn require(tool: Tool) -> Result<PathBuf> {
    find(tool).ok_or(NetlabError::MissingTool {
        tool: tool.name,
        package: tool.package,
    })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A readable one-line rendering of a command, for error messages.
pub(crate) fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// A child process with a deadline. Its output goes to in-memory files rather than pipes, so a
/// chatty child can never block on a full pipe and no reader threads are needed.
pub(crate) struct BoundedChild {
    child: Child,
    stdout: File,
    stderr: File,
    command: String,
    timeout: Duration,
    deadline: Instant,
}

/// Starts `command` with `stdin` as its whole input; [`BoundedChild::finish`] waits for it.
pub(crate) fn spawn(
    mut command: Command,
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<BoundedChild> {
    let mut description = describe(&command);
    if let Some(input) = stdin {
        description.push_str(" <<< '");
        description.push_str(&input.trim_end().replace('\n', "; "));
        description.push('\'');
    }
    let io_error = |source| NetlabError::io(format!("cannot run `{description}`"), source);
    let stdout = memory_file(c"netlab-stdout").map_err(io_error)?;
    let stderr = memory_file(c"netlab-stderr").map_err(io_error)?;
    let input = match stdin {
        Some(text) => {
            let mut file = memory_file(c"netlab-stdin").map_err(io_error)?;
            file.write_all(text.as_bytes()).map_err(io_error)?;
            file.seek(SeekFrom::Start(0)).map_err(io_error)?;
            Stdio::from(file)
        }
        None => Stdio::null(),
    };
    let child = command
        .stdin(input)
        .stdout(stdout.try_clone().map_err(io_error)?)
        .stderr(stderr.try_clone().map_err(io_error)?)
        .spawn()
        .map_err(io_error)?;
    Ok(BoundedChild {
        child,
        stdout,
        stderr,
        command: description,
        timeout,
        deadline: Instant::now() + timeout,
    })
}

impl BoundedChild {
    /// Waits for the child (killing it at the deadline) and returns its standard output, or an
    /// error carrying its standard error if it failed.
    pub(crate) fn finish(mut self) -> Result<String> {
        let status = match wait_until(&mut self.child, self.deadline) {
            Ok(Some(status)) => status,
            Ok(None) => {
                return Err(NetlabError::CommandTimedOut {
                    command: self.command,
                    timeout: self.timeout,
                });
            }
            Err(source) => {
                return Err(NetlabError::io(
                    format!("cannot wait for `{}`", self.command),
                    source,
                ));
            }
        };
        let stdout = read_all(&mut self.stdout);
        if status.success() {
            return Ok(stdout);
        }
        Err(NetlabError::CommandFailed {
            command: self.command,
            status: status.to_string(),
            stderr: read_all(&mut self.stderr).trim().to_owned(),
        })
    }
}

/// Runs `command` to completion within `timeout` and returns its standard output.
pub(crate) fn run(command: Command, stdin: Option<&str>, timeout: Duration) -> Result<String> {
    spawn(command, stdin, timeout)?.finish()
}

/// An `ip` (or `bridge`) command, optionally inside network namespace `netns` (`-n NETNS`).
pub(crate) fn ip_command(ip: &Path, netns: Option<&str>) -> Command {
    let mut command = Command::new(ip);
    if let Some(netns) = netns {
        command.arg("-n").arg(netns);
    }
    command
}

/// Runs `lines` as one `ip -batch` (one process for many changes), inside `netns` if given.
pub(crate) fn ip_batch(ip: &Path, netns: Option<&str>, lines: &[String]) -> Result<()> {
    run(
        batch_command(ip, netns),
        Some(&lines.join("\n")),
        COMMAND_TIMEOUT,
    )
    .map(drop)
}

/// Starts `lines` as one `ip -batch` without waiting, so several namespaces are configured at once.
pub(crate) fn spawn_ip_batch(
    ip: &Path,
    netns: Option<&str>,
    lines: &[String],
) -> Result<BoundedChild> {
    spawn(
        batch_command(ip, netns),
        Some(&lines.join("\n")),
        COMMAND_TIMEOUT,
    )
}

fn batch_command(ip: &Path, netns: Option<&str>) -> Command {
    let mut command = ip_command(ip, netns);
    command.args(["-batch", "-"]);
    command
}

/// Waits for `child` until `deadline`; at the deadline kills it and returns `Ok(None)`.
pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    // Short first pauses: most commands here finish within a few milliseconds.
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            // Already-exited races are harmless: kill then fails and wait reaps.
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Stops `child`: SIGTERM, then SIGKILL if it has not exited after `grace`.
pub(crate) fn terminate(child: &mut Child, grace: Duration) -> io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) has no memory-safety preconditions; the child is not yet reaped, so
        // its pid cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    wait_until(child, Instant::now() + grace).map(drop)
}

fn memory_file(name: &CStr) -> io::Result<File> {
    // SAFETY: `name` is a valid NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn read_all(file: &mut File) -> String {
    let mut bytes = Vec::new();
    // Output is only used for messages and parsing; unreadable output reads as empty.
    if file.seek(SeekFrom::Start(0)).is_ok() {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether `program` runs at all (used by the environment check).
pub(crate) fn runs(program: &Path, args: &[&OsStr]) -> Result<()> {
    let mut command = Command::new(program);
    command.args(args);
    run(command, None, COMMAND_TIMEOUT).map(drop)
}
