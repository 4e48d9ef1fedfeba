//! `sixcast-netlab`: builds a test world for programs in other languages, runs a command with the
//! world's description, and tears the world down afterwards, also on Ctrl-C or SIGTERM.
//!
//! ```text
//! sixcast-netlab run <topology> -- <command> [args..]
//! sixcast-netlab check [topology]
//! sixcast-netlab sweep
//! ```

use std::{
    ffi::OsString,
    fs,
    io::Read,
    os::{fd::FromRawFd, unix::process::ExitStatusExt},
    process::{Command, ExitCode},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicI32, Ordering},
    },
    thread,
    time::Duration,
};

use sixcast_netlab::{Topology, World, check_environment, multicast_router_choice};

const USAGE: &str = "\
usage: sixcast-netlab run <topology> -- <command> [args..]
       sixcast-netlab check [topology]
       sixcast-netlab sweep

run    builds the world, runs the command in the caller's namespace with SIXCAST_WORLD (the
       world as JSON) and SIXCAST_WORLD_FILE (a file with the same JSON) in its environment,
       tears the world down (also on SIGINT/SIGTERM/SIGHUP) and exits with the command's code
       (128+N if it died of signal N).
check  prints `ok` (exit 0) or `skip: <reason>` (exit 77) for the topology (default lan),
       and after `ok` the multicast router that routers use here: smcroute where the kernel
       routes IPv6 multicast, the harness's user-space router elsewhere.
sweep  removes namespaces left behind by dead harness processes.

topologies (`r` is the router, on every segment as ::1; the others route via it):
  lan[:N]         hosts h1..hN on one segment (fd5c:1::/64; N defaults to 3)
  routed-mcast    segments a (a1, a2; fd5c:a::/64) and b (b1, b2; fd5c:b::/64),
                  router r routes unicast and multicast
  routed-nomcast  the same, router r routes unicast only
  routed-ssm      the same, router r routes unicast and only source-specific multicast
                  (ff3e::/32 from a's hosts to b and from b's hosts to a)
  stratum         core (s0, r1, r2, c1, c2; fd5c:c::/64) and island (i1, i2; fd5c:1a::/64),
                  router r routes unicast only
  stratum2        the core and islands a (i1, i2; fd5c:1a::/64) and b (j1, j2; fd5c:1b::/64)
                  behind one three-legged router r that routes unicast only

environment: SIXCAST_NETLAB_MROUTER=smcroute|user-space|auto forces a multicast router.

exit codes of the harness itself: 64 usage error, 70 world could not be built or torn down,
77 this machine cannot build worlds (skip).";

/// Exit codes from sysexits.h, plus the automake convention for "skipped".
const EXIT_USAGE: u8 = 64;
const EXIT_SOFTWARE: u8 = 70;
const EXIT_SKIP: u8 = 77;

/// How long the command gets to exit after a forwarded signal before it is killed.
const SIGNAL_GRACE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(subcommand) = args.first().and_then(|arg| arg.to_str()) else {
        return usage_error("missing subcommand");
    };
    match subcommand {
        "run" => run(&args[1..]),
        "check" => check(&args[1..]),
        "sweep" => match sixcast_netlab::sweep_leftovers() {
            Ok(removed) => {
                for name in removed {
                    println!("removed {name}");
                }
                ExitCode::SUCCESS
            }
            Err(err) => fail(&err.to_string()),
        },
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => usage_error(&format!("unknown subcommand {other:?}")),
    }
}

fn usage_error(problem: &str) -> ExitCode {
    eprintln!("sixcast-netlab: {problem}\n\n{USAGE}");
    ExitCode::from(EXIT_USAGE)
}

fn fail(problem: &str) -> ExitCode {
    eprintln!("sixcast-netlab: {problem}");
    ExitCode::from(EXIT_SOFTWARE)
}

fn parse_topology(arg: Option<&OsString>) -> Result<Topology, String> {
    let text = arg.and_then(|arg| arg.to_str()).unwrap_or("lan");
    text.parse()
        .map_err(|err: sixcast_netlab::NetlabError| err.to_string())
}

fn check(args: &[OsString]) -> ExitCode {
    if args.len() > 1 {
        return usage_error("check takes at most one topology");
    }
    let topology = match parse_topology(args.first()) {
        Ok(topology) => topology,
        Err(problem) => return usage_error(&problem),
    };
    match check_environment(topology.routes_multicast()) {
        Ok(()) => {
            println!("ok");
            match multicast_router_choice() {
                Ok(choice) => println!("multicast router: {choice}"),
                Err(err) => println!("multicast router: none can run: {err}"),
            }
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("skip: {reason}");
            ExitCode::from(EXIT_SKIP)
        }
    }
}

/// What the signal thread and the main thread share while the command runs.
#[derive(Default)]
struct RunState {
    /// The command's pid while it runs (and is not yet reaped).
    child: Option<libc::pid_t>,
    /// The first termination signal received.
    stop: Option<libc::c_int>,
}

fn run(args: &[OsString]) -> ExitCode {
    let Some(topology_arg) = args.first() else {
        return usage_error("run needs a topology and a command");
    };
    let topology = match parse_topology(Some(topology_arg)) {
        Ok(topology) => topology,
        Err(problem) => return usage_error(&problem),
    };
    let command_args = match args.get(1).and_then(|arg| arg.to_str()) {
        Some("--") => &args[2..],
        _ => &args[1..],
    };
    let Some((program, program_args)) = command_args.split_first() else {
        return usage_error("run needs a command after the topology");
    };
    if let Err(reason) = check_environment(topology.routes_multicast()) {
        eprintln!("sixcast-netlab: skip: {reason}");
        return ExitCode::from(EXIT_SKIP);
    }

    // A signal handler only records the signal; a thread acts on it. So the world is always torn
    // down by the main thread, never interrupted halfway. (Blocking the signals instead would be
    // inherited by the processes the harness starts, such as smcroute.)
    let state = Arc::new(Mutex::new(RunState::default()));
    if let Err(err) = watch_termination_signals(Arc::clone(&state)) {
        return fail(&format!("cannot install signal handlers: {err}"));
    }

    let world = match World::build(topology) {
        Ok(world) => world,
        Err(err) if err.is_environment_problem() => {
            eprintln!("sixcast-netlab: skip: {err}");
            return ExitCode::from(EXIT_SKIP);
        }
        Err(err) => return fail(&format!("cannot build the {topology} world: {err}")),
    };
    let json = world.to_json().to_string();
    let world_file = world.state_dir().join("world.json");
    if let Err(err) = fs::write(&world_file, &json) {
        return finish(
            world,
            fail(&format!("cannot write {}: {err}", world_file.display())),
        );
    }

    let mut command = Command::new(program);
    command
        .args(program_args)
        .env("SIXCAST_WORLD", &json)
        .env("SIXCAST_WORLD_FILE", &world_file);
    // Spawning under the lock means the signal thread either sees the stop before the spawn
    // (and we do not start) or sees the pid after (and forwards the signal).
    let mut child = {
        let mut shared = state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(signal) = shared.stop {
            drop(shared);
            return finish(world, ExitCode::from(signal_exit_code(signal)));
        }
        match command.spawn() {
            Ok(child) => {
                shared.child = libc::pid_t::try_from(child.id()).ok();
                child
            }
            Err(err) => {
                drop(shared);
                let program = program.to_string_lossy();
                return finish(world, fail(&format!("cannot run {program}: {err}")));
            }
        }
    };
    // Wait without reaping first, so the pid cannot be reused while the signal thread may
    // still send to it; then forget the pid, then reap.
    let pid = state.lock().unwrap_or_else(PoisonError::into_inner).child;
    if let Some(pid) = pid {
        wait_without_reaping(pid);
    }
    state.lock().unwrap_or_else(PoisonError::into_inner).child = None;
    let code = match child.wait() {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => u8::try_from(code).unwrap_or(EXIT_SOFTWARE),
            (None, Some(signal)) => signal_exit_code(signal),
            (None, None) => EXIT_SOFTWARE,
        },
        Err(err) => {
            eprintln!("sixcast-netlab: cannot wait for the command: {err}");
            EXIT_SOFTWARE
        }
    };
    finish(world, ExitCode::from(code))
}

/// Tears `world` down; a teardown failure turns success into EXIT_SOFTWARE.
fn finish(world: World, code: ExitCode) -> ExitCode {
    match world.teardown() {
        Ok(()) => code,
        Err(err) => fail(&format!("incomplete teardown: {err}")),
    }
}

fn signal_exit_code(signal: libc::c_int) -> u8 {
    u8::try_from(128 + signal).unwrap_or(EXIT_SOFTWARE)
}

/// The write end of the pipe the signal handler reports to (-1 until installed).
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Async-signal-safe: writes the signal number and whether the kernel (a terminal) sent it.
extern "C" fn record_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: errno is thread-local; the handler restores it for the interrupted code.
    let saved_errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers.
    let from_terminal = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    let message = [signal as u8, u8::from(from_terminal)];
    // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, so a full pipe (a flood
    // of signals) drops the report instead of hanging the handler.
    unsafe {
        libc::write(
            SIGNAL_PIPE.load(Ordering::Relaxed),
            message.as_ptr().cast(),
            2,
        )
    };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

fn watch_termination_signals(state: Arc<Mutex<RunState>>) -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills in two new descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [read_fd, write_fd] = fds;
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(write_fd, libc::F_SETFL, libc::O_NONBLOCK) };
    SIGNAL_PIPE.store(write_fd, Ordering::Relaxed);
    // SAFETY: read_fd is a new descriptor that nothing else owns.
    let mut reports = unsafe { fs::File::from_raw_fd(read_fd) };
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; we set a handler with the SA_SIGINFO signature.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    thread::spawn(move || {
        let mut message = [0u8; 2];
        while reports.read_exact(&mut message).is_ok() {
            let (signal, from_terminal) = (libc::c_int::from(message[0]), message[1] != 0);
            on_signal(&state, signal, from_terminal);
        }
    });
    Ok(())
}

/// Records the stop and forwards `signal` to the command, killing it if it has not exited after
/// [`SIGNAL_GRACE`].
fn on_signal(state: &Arc<Mutex<RunState>>, signal: libc::c_int, from_terminal: bool) {
    let mut shared = state.lock().unwrap_or_else(PoisonError::into_inner);
    let first = shared.stop.is_none();
    shared.stop.get_or_insert(signal);
    let Some(pid) = shared.child else {
        return;
    };
    // The terminal sends Ctrl-C to the whole foreground process group, which includes the
    // command; forwarding it would deliver it twice.
    if !from_terminal {
        // SAFETY: kill(2); the pid is not reaped while `child` is set.
        unsafe { libc::kill(pid, signal) };
    }
    if first {
        let state = Arc::clone(state);
        thread::spawn(move || {
            thread::sleep(SIGNAL_GRACE);
            let shared = state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(pid) = shared.child {
                eprintln!("sixcast-netlab: the command ignored the signal; killing it");
                // SAFETY: kill(2); the pid is not reaped while `child` is set.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
    }
}

/// Blocks until process `pid` has exited, leaving it unreaped (a zombie) so its pid stays taken.
fn wait_without_reaping(pid: libc::pid_t) {
    loop {
        // SAFETY: siginfo_t is plain data that waitid fills in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(2) on our own child with a valid out-pointer.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}
