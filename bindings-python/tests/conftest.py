"""Shared helpers: the conformance vectors, and the network-namespace world of the tests marked
``world`` (built by ``sixcast-netlab run lan:3 -- ...``, described in env SIXCAST_WORLD)."""

import json
import os
import pathlib
import select
import subprocess
import sys
import time

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
VECTORS = TESTS.parents[1] / "tests" / "conformance" / "vectors"


def load_vectors(file_name):
    """One file of tests/conformance/vectors, parsed."""
    with open(VECTORS / file_name, encoding="utf-8") as file:
        return json.load(file)


def case_name(case):
    """The channel name of a vector case as bytes (see addresses.json's `_comment`)."""
    if "name_repeat" in case:
        repeat = case["name_repeat"]
        return bytes.fromhex(repeat["byte_hex"]) * repeat["count"]
    if "name_hex" in case:
        return bytes.fromhex(case["name_hex"])
    return case["name_utf8"].encode()


def case_id(case):
    """A readable pytest id for a vector case."""
    if "name" in case and isinstance(case["name"], str):
        return case["name"]
    if "name_repeat" in case:
        name = "{count}x{byte_hex}".format(**case["name_repeat"])
    else:
        name = case.get("name_utf8") or case.get("name_hex")
    parts = [case.get("op"), case.get("profile"), case.get("scope"), name, case.get("why")]
    return "-".join(str(part) for part in parts if part)[:60]


class Process:
    """A Python process started in a host of the world, reading its standard output by line."""

    def __init__(self, popen, what):
        self.popen = popen
        self.what = what

    def read_line(self, timeout=10.0):
        """The next line of output, or a test failure after `timeout` seconds or at exit. Reads
        the pipe byte by byte: finish() reads the rest from the pipe itself, so nothing may sit
        in a Python buffer."""
        deadline = time.monotonic() + timeout
        pipe = self.popen.stdout.fileno()
        line = bytearray()
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
                self.fail(f"printed no whole line within {timeout} s")
            byte = os.read(pipe, 1)
            if not byte:
                self.fail("exited before printing the expected line")
            line += byte
        return line[:-1].decode()

    def wait_ready(self):
        line = self.read_line()
        assert line == "READY", f"{self.what}: expected READY, got {line!r}"

    def finish(self, timeout=30.0):
        """Waits for the exit; returns (exit code, remaining stdout lines, stderr)."""
        try:
            stdout, stderr = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            stdout, stderr = self.popen.communicate()
            pytest.fail(f"{self.what} did not exit within {timeout} s; stderr:\n{stderr}")
        return self.popen.returncode, stdout.splitlines(), stderr

    def fail(self, problem):
        self.popen.kill()
        _, stderr = self.popen.communicate()
        pytest.fail(f"{self.what} {problem}; stderr:\n{stderr}")


class World:
    """The hosts of a sixcast-netlab world; runs this interpreter in them."""

    def __init__(self, description):
        self.hosts = {host["name"]: host for host in description["hosts"]}
        self.started = []

    def command(self, host, script, *args):
        netns = self.hosts[host]["netns"]
        return ["ip", "netns", "exec", netns, sys.executable, str(TESTS / script), *map(str, args)]

    def start(self, host, script, *args):
        """Starts `script` with `args` in `host`; returns a Process."""
        popen = subprocess.Popen(
            self.command(host, script, *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        process = Process(popen, f"{script} {' '.join(map(str, args))} on {host}")
        self.started.append(process)
        return process

    def run(self, host, script, *args, timeout=30.0):
        """Runs `script` in `host` to the end; returns (exit code, stdout lines, stderr)."""
        return self.start(host, script, *args).finish(timeout)

    def stop_all(self):
        for process in self.started:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.communicate()


def pytest_collection_modifyitems(items):
    """Marks every test that uses the world fixture `world`, for `pytest -m world`."""
    for item in items:
        if "world" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.world)


@pytest.fixture
def world():
    """The world described by SIXCAST_WORLD. Without one the test is skipped, except under CI,
    where a skipped world test would hide that the multicast tests never ran."""
    description = os.environ.get("SIXCAST_WORLD")
    if description is None:
        reason = "needs a network-namespace world: run bindings-python/run-tests"
        if os.environ.get("CI"):
            pytest.fail(f"SIXCAST_WORLD is not set and CI is: {reason}")
        pytest.skip(reason)
    world = World(json.loads(description))
    yield world
    world.stop_all()
