#!/usr/bin/env python3
"""Carries out the controller's signed commands and acknowledges them.

    agent.py --name web1 --trust controller.key.pub --dir /srv/pushed

The agent trusts one public key: the library then delivers only commands signed by it and
counts what it refused (unsigned, or signed by another key), which the agent reports. A command
asks the agent to write a file in its directory; the agent answers on `<channel>.acks`. The
controller resends until it hears the answer, so a command the agent has already carried out
(same id) is acknowledged again but not done again.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import sixcast


def log(text):
    print(text, flush=True)


def write_file(directory, name, content):
    """Carries out a command: (ok, detail)."""
    # Even a trusted controller only names a file inside the agent's own directory.
    if not isinstance(name, str) or name in ("", ".", "..") or os.path.basename(name) != name:
        return False, f"refused file name {name!r}"
    if not isinstance(content, str):
        return False, "content is not text"
    target = directory / name
    temporary = directory / f".{name}.tmp"
    try:
        temporary.write_text(content)
        # The rename makes the new file appear whole or not at all.
        os.replace(temporary, target)
    except (OSError, ValueError) as err:
        return False, f"cannot write {target}: {err}"
    return True, f"wrote {target}"


def handle(payload, args, done, acks):
    try:
        command = json.loads(payload)
    except ValueError:
        command = None
    if not isinstance(command, dict) or not isinstance(command.get("id"), str):
        log(f"{args.name}: ignored a signed message that is not a command")
        return
    command_id = command["id"]
    if command_id in done:
        log(f"{args.name}: command {command_id} already done; acknowledging again")
    else:
        done[command_id] = write_file(args.dir, command.get("write"), command.get("content", ""))
        log(f"{args.name}: command {command_id}: {done[command_id][1]}")
    ok, detail = done[command_id]
    acks.send(json.dumps({"id": command_id, "agent": args.name, "ok": ok, "detail": detail}))
    acks.flush()


def report_refusals(name, commands, reported):
    """Logs what the library refused since the last report; returns the new totals."""
    refused = {reason: count for reason, count in commands.stats().drops.items() if count}
    if refused != reported:
        counts = ", ".join(f"{reason}={count}" for reason, count in sorted(refused.items()))
        log(f"{name}: refused so far (unsigned or not signed by the trusted key): {counts}")
    return refused


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="this agent's name in acknowledgements")
    parser.add_argument("--trust", required=True, help="the controller's public key file (KEY_FILE.pub)")
    parser.add_argument("--dir", required=True, type=Path, help="directory the pushed files are written to")
    parser.add_argument("--channel", default="webservers", help="default: webservers")
    args = parser.parse_args(argv)
    trusted = sixcast.PublicKey.from_file_text(Path(args.trust).read_text())
    args.dir.mkdir(parents=True, exist_ok=True)
    # Command id -> (ok, detail), so that a resent command is answered without acting twice.
    done = {}
    with sixcast.Context() as context:
        commands = context.channel(args.channel)
        # From the first trusted key on, only datagrams signed by a trusted key are delivered.
        commands.trust(trusted)
        acks = context.channel(f"{args.channel}.acks")
        commands.join()
        log(f"{args.name}: listening on {args.channel} ({commands.group}), trusting {trusted.fingerprint}")
        refused = {}
        while True:
            try:
                handle(commands.recv(timeout=1.0).payload, args, done, acks)
            except sixcast.TimeoutError:
                pass
            refused = report_refusals(args.name, commands, refused)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(0)
