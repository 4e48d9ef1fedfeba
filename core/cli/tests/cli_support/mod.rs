//! What the tests of the `sixcast` command share: running it, and driving listeners, services
//! and metrics scrapes inside network-namespace hosts.

#![allow(dead_code)] // each test file uses its own subset

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::harness::World;

pub(crate) const SIXCAST: &str = env!("CARGO_BIN_EXE_sixcast");

pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(SIXCAST)
        .args(args)
        .output()
        .expect("run sixcast");
    (
        output.status.code().expect("exit code"),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A `sixcast listen` process and the thread collecting the rest of its standard error.
pub(crate) struct Listener {
    pub(crate) child: std::process::Child,
    pub(crate) stderr: std::thread::JoinHandle<String>,
}

/// Starts `sixcast listen` in a host and waits until it has joined.
pub(crate) fn start_listener(world: &World, host: &str, args: &[&str]) -> Listener {
    let mut child = world
        .host(host)
        .command(SIXCAST)
        .arg("listen")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start listener");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("listening to"), "listener said: {line}");
    // Keep draining: a closed pipe would make the listener's later messages fail.
    let stderr = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    Listener { child, stderr }
}

/// Waits for the listener to exit; returns its exit code, standard output and standard error.
pub(crate) fn finish(listener: Listener, within: Duration) -> (i32, String, String) {
    let (code, stdout, stderr) = finish_bytes(listener, within);
    (code, String::from_utf8(stdout).unwrap(), stderr)
}

/// Like [`finish`], with standard output as bytes.
pub(crate) fn finish_bytes(listener: Listener, within: Duration) -> (i32, Vec<u8>, String) {
    let Listener { mut child, stderr } = listener;
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = Vec::new();
            std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
            return (status.code().unwrap_or(-1), stdout, stderr.join().unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A service process (`sixcast stratum0`/`relay`), killed when dropped.
pub(crate) struct Service(pub(crate) std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sixcast <command...>` in `host` and waits for its "running" line.
pub(crate) fn start_service(world: &World, host: &str, command: &[&str]) -> Service {
    let mut child = world
        .host(host)
        .command(SIXCAST)
        .args(command)
        .args(["--hops", "8"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the service");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("running"), "{command:?} said: {line}");
    // Keep draining, so that the service never blocks on (or fails writing to) a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Service(child)
}

/// Runs `sixcast probe ARGS --json --hops 8` on `host`: whether it succeeded, its JSON report
/// and its standard error.
pub(crate) fn probe(world: &World, host: &str, args: &[&str]) -> (bool, serde_json::Value, String) {
    let output = world
        .host(host)
        .command(SIXCAST)
        .arg("probe")
        .args(args)
        .args(["--json", "--hops", "8"])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), report, stderr)
}

/// GETs `http://ADDRESS/metrics` from inside `host` and returns the body; panics unless it
/// answers 200.
pub(crate) fn scrape(world: &World, host: &str, address: &str) -> String {
    let (status, body) = http_get(world, host, address, "/metrics");
    assert!(status.contains(" 200 "), "{address}: {status}");
    body
}

/// A plain HTTP/1.0 GET of `path` at `address`, from inside `host`: the status line and the body.
pub(crate) fn http_get(world: &World, host: &str, address: &str, path: &str) -> (String, String) {
    use std::io::Read;
    let response = world
        .host(host)
        .run(|| -> std::io::Result<String> {
            let mut stream = std::net::TcpStream::connect(address)?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(stream, "GET {path} HTTP/1.0\r\nConnection: close\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        })
        .unwrap()
        .unwrap_or_else(|err| panic!("GET {address}{path}: {err}"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// The value of the unlabelled metric `name` in an OpenMetrics text.
pub(crate) fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}
