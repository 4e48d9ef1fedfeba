#!/usr/bin/env python3
"""The cross-language scenario: a sender in each language, receivers in every other language.

Runs inside a namespace world made by `sixcast-netlab run lan:N -- matrix.py AGENT...`, where each
AGENT is `label=command` (the command is split on spaces; see agents/README.md for what an
agent does). Agent i runs on host h<i+1>. For every sender, all other agents join a channel,
then the sender sends a text, an empty and a 1 MiB message; every receiver must get all three
intact. Prints the results as a matrix and exits 1 if any pair failed.
"""

import json
import os
import shlex
import subprocess
import sys
import threading
import time

MESSAGES = 3
RECEIVE_TIMEOUT = 20.0
READY_TIMEOUT = 30.0


def host_netns(world, index):
    return world["hosts"][index]["netns"]


def start_receiver(netns, command, channel):
    process = subprocess.Popen(
        ["ip", "netns", "exec", netns, *command, "recv", channel, str(MESSAGES), str(RECEIVE_TIMEOUT)],
        stdout=subprocess.PIPE,
        # Agents' complaints go straight to our standard error, where a failure is explained.
        stderr=None,
        text=True,
    )
    ready = threading.Event()
    lines = []

    def read():
        for line in process.stdout:
            if line.strip() == "READY":
                ready.set()
            else:
                lines.append(line)
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return process, ready, reader, lines


def verdict(sender, returncode, lines):
    """'ok', or why not."""
    if returncode != 0:
        return f"exit {returncode} after {len(lines)} message(s)"
    try:
        messages = [json.loads(line) for line in lines]
    except json.JSONDecodeError as err:
        return f"bad output: {err}"
    texts = [m for m in messages if m["text"] == f"hello from {sender}"]
    empties = [m for m in messages if m["size"] == 0]
    large = [m for m in messages if m["size"] == 1 << 20 and m["pattern_ok"]]
    if len(messages) != MESSAGES or not (texts and empties and large):
        summary = ", ".join(f"{m['size']}B" for m in messages)
        return f"got {len(messages)} ({summary})"
    if [m["seq"] for m in messages] != sorted(m["seq"] for m in messages):
        return "out of order"
    return "ok"


def run_round(world, agents, index):
    sender_label, sender_command = agents[index]
    channel = f"matrix/{sender_label}"
    receivers = {}
    for other, (label, command) in enumerate(agents):
        if other != index:
            receivers[label] = start_receiver(host_netns(world, other), command, channel)
    for label, (process, ready, _, _) in receivers.items():
        if not ready.wait(READY_TIMEOUT):
            process.kill()
    sent = subprocess.run(
        ["ip", "netns", "exec", host_netns(world, index), *sender_command, "send", channel, sender_label],
        capture_output=True,
        text=True,
        timeout=60,
    )
    results = {}
    for label, (process, _, reader, lines) in receivers.items():
        if sent.returncode != 0:
            # Nothing is coming: do not wait out the receive timeout.
            process.kill()
        try:
            process.wait(timeout=RECEIVE_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # The reader thread owns stdout; it ends at end of file.
        reader.join(5)
        if sent.returncode != 0:
            results[label] = f"sender exit {sent.returncode}: {sent.stderr.strip()[:60]}"
        else:
            results[label] = verdict(sender_label, process.returncode, lines)
    return results


def main(argv):
    world = json.loads(os.environ["SIXCAST_WORLD"])
    agents = []
    for spec in argv:
        label, _, command = spec.partition("=")
        agents.append((label, shlex.split(command)))
    if len(agents) < 2 or len(world["hosts"]) < len(agents):
        print(f"matrix: need at least two agents and a host for each (have {len(world['hosts'])})")
        return 2
    began = time.monotonic()
    matrix = {label: run_round(world, agents, i) for i, (label, _) in enumerate(agents)}
    labels = [label for label, _ in agents]
    width = max(len(label) for label in labels) + 2
    print("cross-language matrix: rows send, columns receive (text, empty and 1 MiB messages)")
    print("sender \\ receiver".ljust(max(width + 4, 20)) + "".join(label.ljust(width) for label in labels))
    failures = 0
    for sender in labels:
        cells = []
        for receiver in labels:
            if receiver == sender:
                cells.append("-".ljust(width))
                continue
            result = matrix[sender][receiver]
            failures += result != "ok"
            cells.append(result.ljust(width) if result == "ok" else "FAIL".ljust(width))
        print(sender.ljust(max(width + 4, 20)) + "".join(cells))
    for sender in labels:
        for receiver, result in matrix[sender].items():
            if result != "ok":
                print(f"  {sender} -> {receiver}: {result}")
    pairs = len(labels) * (len(labels) - 1)
    print(f"matrix: {pairs - failures} passed, {failures} failed ({time.monotonic() - began:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
