#!/usr/bin/env python3
"""Runs the examples for sixcast's users across the hosts of a namespace world and checks what
they do: the configuration push (Python and Go agents), the monitoring fan-in (Node and C
agents, Node collector) and service discovery (Rust).

    tests/world lan:4 -- python3 examples/test-examples.py [EXAMPLE...]

EXAMPLE is config-push, monitoring or discovery (default: all three). Every example process runs
in a host of the world (`ip netns exec`), so no traffic leaves the world. The programs come from
the options, or from the environment as tests/run sets it up: --python (the venv with the
sixcast binding, $SIXCAST_PYTHON_VENV/bin/python), --node and --node-binding (bindings-node,
built), --discovery (target/debug/examples/discovery), --c-prefix (where `make -C bindings-c
install` put libsixcast and sixcast.pc; the C and Go programs are built against it here, as
their READMEs say). Exits 1 if any example failed.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
STATES = {"OK", "WARNING", "CRITICAL", "UNKNOWN"}


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Process:
    """A program running in a host's namespace, its output lines collected as they come."""

    def __init__(self, label, netns, command):
        self.label = label
        # A session of its own, so that stopping it also stops what it started (check plugins).
        self.popen = subprocess.Popen(
            ["ip", "netns", "exec", netns, *map(str, command)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.output = {"stdout": [], "stderr": []}
        self.arrived = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read, args=(getattr(self.popen, name), lines), daemon=True)
            for name, lines in self.output.items()
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, lines):
        for line in stream:
            with self.arrived:
                lines.append(line.rstrip("\n"))
                self.arrived.notify_all()

    def matching(self, pattern, stream="stdout"):
        with self.arrived:
            return [line for line in self.output[stream] if re.search(pattern, line)]

    def wait_for(self, pattern, timeout, stream="stdout", count=1):
        """The `count`th line matching `pattern`, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                found = [line for line in self.output[stream] if re.search(pattern, line)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not any(r.is_alive() for r in self.readers)):
                    raise Failure(f"{self.label}: {len(found)} of {count} {stream} lines matching {pattern!r} "
                                  f"within {timeout} s")
                self.arrived.wait(min(left, 0.2))

    def finish(self, timeout):
        """Waits for the program to exit by itself; its exit code."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure(f"{self.label}: still running after {timeout} s") from None
        for reader in self.readers:
            reader.join(5)
        return code

    def stop(self):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        for reader in self.readers:
            reader.join(5)

    def dump(self):
        for stream, lines in self.output.items():
            for line in lines[-25:]:
                print(f"    {self.label} {stream}: {line}")


def build_c_and_go(workdir, prefix):
    """Builds the C monitoring agent and the Go config-push agent against the C library in
    `prefix`, with the commands their READMEs give; returns their paths."""
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"),
               # The prefix is not on the loader's path: the programs carry it.
               CGO_LDFLAGS=f"-Wl,-rpath,{prefix / 'lib'}")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "sixcast"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    c_agent, go_agent = workdir / "monitoring-agent", workdir / "agent-go"
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror",
                    EXAMPLES / "monitoring" / "agent.c", *flags, f"-Wl,-rpath,{prefix / 'lib'}",
                    "-o", c_agent], env=env, check=True)
    subprocess.run(["go", "build", "-o", go_agent, "."], cwd=EXAMPLES / "config-push" / "agent-go",
                   env=env, check=True)
    return c_agent, go_agent


class Run:
    """Starts programs in the world's hosts and stops every one of them at the end."""

    def __init__(self, world, workdir, programs):
        self.hosts = {host["name"]: host for host in world["hosts"]}
        self.workdir = workdir
        self.c_agent, self.go_agent = programs
        self.processes = []

    def start(self, label, host, command):
        process = Process(f"{label}@{host}", self.hosts[host]["netns"], command)
        self.processes.append(process)
        return process

    def address(self, host):
        return self.hosts[host]["addr"]


def config_push(run, options):
    python = shlex.split(options.python)
    directory = EXAMPLES / "config-push"
    controller = [*python, directory / "controller.py"]
    key = run.workdir / "controller.key"
    check(run.start("keygen", "h1", [*controller, "keygen", key]).finish(30) == 0, "keygen failed")
    # web2 is the Go agent: one controller drives agents of both languages.
    agent_programs = {"web1": [*python, directory / "agent.py"], "web2": [run.go_agent],
                      "web3": [*python, directory / "agent.py"]}
    agents = {
        name: run.start(name, host, [*agent_programs[name], "--name", name, "--trust", f"{key}.pub",
                                     "--dir", run.workdir / name])
        for name, host in (("web1", "h2"), ("web2", "h3"), ("web3", "h4"))
    }
    for agent in agents.values():
        agent.wait_for(r"listening on webservers", 30)

    push = run.start("controller", "h1", [*controller, "push", "--key", key, "--expect", "web1,web2,web3",
                                          "--deadline", "15", "motd", "pushed by the test"])
    check(push.finish(30) == 0, "the controller did not report every agent acknowledged")
    for name in agents:
        check(push.matching(rf"^{name}: acknowledged"), f"{name} not reported as acknowledged")
        written = run.workdir / name / "motd"
        check(written.exists() and written.read_text() == "pushed by the test", f"{name} did not write motd")

    impostor = run.start("impostor", "h1", [*python, directory / "impostor.py", "--times", "2", "evil", "x"])
    check(impostor.finish(30) == 0, "the impostor failed to send")
    for name, agent in agents.items():
        agent.wait_for(r"refused so far.*not_signed=[1-9].*untrusted_signer=[1-9]", 10)
        check(not (run.workdir / name / "evil").exists(), f"{name} acted on an unsigned or wrongly signed command")

    # web3 stops and web4 never ran: both must be reported, while the others act once however
    # often the command is resent.
    agents["web3"].stop()
    push = run.start("controller", "h1", [*controller, "push", "--key", key, "--expect", "web1,web2,web3,web4",
                                          "--deadline", "4", "--resend", "0.5", "release", "v2"])
    check(push.finish(30) == 1, "the controller did not fail with web3 and web4 missing")
    for name in ("web3", "web4"):
        check(push.matching(rf"^{name}: no acknowledgement within 4 s"), f"{name} not reported as unacknowledged")
    command_id = re.match(r"command (\w+):", push.wait_for(r"^command ", 1)).group(1)
    for name in ("web1", "web2"):
        check(push.matching(rf"^{name}: acknowledged"), f"{name} not reported as acknowledged")
        agents[name].wait_for(rf"command {command_id} already done", 5)
        acted = agents[name].matching(rf"command {command_id}: wrote")
        check(len(acted) == 1, f"{name} carried out the resent command {len(acted)} times, not once")
        check((run.workdir / name / "release").read_text() == "v2", f"{name} did not write release")


def monitoring(run, options):
    node = shlex.split(options.node)
    # A package directory beside the scripts resolves `import ... from 'sixcast'`, as npm install would.
    package = run.workdir / "monitoring"
    (package / "node_modules").mkdir(parents=True)
    (package / "node_modules" / "sixcast").symlink_to(Path(options.node_binding).resolve())
    for script in ("agent.mjs", "collector.mjs"):
        shutil.copy(EXAMPLES / "monitoring" / script, package / script)
    plugins = {"h2": ("OK", "echo all fine"), "h3": ("WARNING", "echo queue long; exit 1"),
               "h4": ("CRITICAL", "echo app down; exit 2")}
    # h3 runs the C agent, which has no built-in load check; the others run the Node agent.
    programs = {"h2": [*node, package / "agent.mjs"], "h3": [run.c_agent], "h4": [*node, package / "agent.mjs"]}
    load = {host: "" if host == "h3" else r"load \w+, " for host in plugins}
    agents = {
        host: run.start("agent", host, [*programs[host], "--host", host, "--interval", "1",
                                        "--check", f"app={command}"])
        for host, (_, command) in plugins.items()
    }
    for host, agent in agents.items():
        agent.wait_for(rf"^agent {host}: {load[host]}app {plugins[host][0]}$", 30)
    # The collector's 8 s window starts once every agent reports. h4 stops after two more
    # reports: the collector has heard it, then hears nothing from it for about 6 s.
    reported = r"^agent h4: load \w+, app CRITICAL$"
    collector = run.start("collector", "h1", [*node, package / "collector.mjs", "--silent-after", "3",
                                              "--once-after", "8", "--json"])
    collector.wait_for(r"listening on monitoring", 30, stream="stderr")
    agents["h4"].wait_for(reported, 10, count=len(agents["h4"].matching(reported)) + 2)
    agents["h4"].stop()
    check(collector.finish(30) == 0, "the collector failed")
    report = json.loads("\n".join(collector.output["stdout"]))
    hosts = {host["host"]: host for host in report["hosts"]}
    check(set(hosts) == set(plugins), f"the collector lists hosts {sorted(hosts)}, not {sorted(plugins)}")
    for name, (state, _) in plugins.items():
        services = {service["service"]: service for service in hosts[name]["services"]}
        check(services.get("app", {}).get("state") == state, f"{name} app is {services.get('app')}, not {state}")
        if load[name]:
            check(services.get("load", {}).get("state") in STATES, f"{name} has no valid load result")
        else:
            check(set(services) == {"app"}, f"the C agent on {name} sent {sorted(services)}")
            check(services["app"]["output"] == "queue long", f"{name} output {services['app']['output']!r}")
        check(hosts[name]["silent"] == (name == "h4"), f"{name} silent is {hosts[name]['silent']}")
    check(report["ignored"] == 0, f"the collector ignored {report['ignored']} messages")


def discovery(run, options):
    binary = shlex.split(options.discovery)
    check(Path(binary[0]).exists(), f"{binary[0]} is missing: cargo build -p sixcast --example discovery")
    discoverer = run.start("discover", "h1", [*binary, "discover"])
    discoverer.wait_for(r"listening on services", 30, stream="stderr")
    services = {"web": ("h2", 8080), "db": ("h3", 5432)}
    announcers = {
        name: run.start(f"announce {name}", host, [*binary, "announce", name, run.address(host), port,
                                                   "--interval", "1"])
        for name, (host, port) in services.items()
    }
    endpoint = {name: re.escape(f"[{run.address(host)}]:{port}") for name, (host, port) in services.items()}
    for name in services:
        discoverer.wait_for(rf"^added {name} at {endpoint[name]}$", 15)
    announcers["db"].stop()
    # Announced with a 3 s lifetime (three 1 s intervals).
    discoverer.wait_for(rf"^removed db at {endpoint['db']}: ", 10)
    time.sleep(4)
    check(not discoverer.matching(r"^removed web "), "web was dropped while it kept announcing")
    listed = discoverer.matching(r"^services ")[-1]
    check(re.fullmatch(rf"services \(1\): web at {endpoint['web']}", listed), f"the final list is {listed!r}")


SCENARIOS = {"config-push": config_push, "monitoring": monitoring, "discovery": discovery}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    venv = Path(os.environ.get("SIXCAST_PYTHON_VENV", TARGET / "venv-python"))
    parser.add_argument("--python", default=str(venv / "bin" / "python"), help="a Python with sixcast installed")
    parser.add_argument("--node", default="node")
    parser.add_argument("--node-binding", default=str(REPO / "bindings-node"), help="the built Node package")
    parser.add_argument("--discovery", default=str(TARGET / "debug" / "examples" / "discovery"),
                        help="the discovery example's binary")
    parser.add_argument("--c-prefix", default=str(TARGET / "c-prefix"), help="where libsixcast is installed")
    parser.add_argument("examples", nargs="*", metavar="EXAMPLE", help=", ".join(SCENARIOS))
    options = parser.parse_args(argv)
    unknown = set(options.examples) - SCENARIOS.keys()
    if unknown:
        parser.error(f"unknown examples {', '.join(sorted(unknown))} (choose from {', '.join(SCENARIOS)})")
    if "SIXCAST_WORLD" not in os.environ:
        print("test-examples: run inside a world: tests/world lan:4 -- python3 examples/test-examples.py")
        return 2
    world = json.loads(os.environ["SIXCAST_WORLD"])
    if len(world["hosts"]) < 4:
        print("test-examples: needs a world of at least four hosts (lan:4)")
        return 2
    failures = 0
    builds = tempfile.TemporaryDirectory(prefix="sixcast-examples-")
    programs = build_c_and_go(Path(builds.name), Path(options.c_prefix))
    for name in options.examples or SCENARIOS:
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"sixcast-{name}-") as workdir:
            run = Run(world, Path(workdir), programs)
            try:
                SCENARIOS[name](run, options)
                print(f"ok    {name} ({time.monotonic() - began:.1f} s)")
            # Anything unexpected (bad output, a missing file) fails this example, not the others.
            except Exception as err:
                failures += 1
                print(f"FAIL  {name}: {err if isinstance(err, Failure) else repr(err)}")
                for process in run.processes:
                    process.dump()
            finally:
                for process in run.processes:
                    process.stop()
    builds.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
