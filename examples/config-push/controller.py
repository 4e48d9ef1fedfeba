#!/usr/bin/env python3
"""Pushes a signed command to every agent on a channel and reports who acknowledged it.

    controller.py keygen controller.key         # once: the signing key and controller.key.pub
    controller.py push --key controller.key --expect web1,web2,web3 motd "Welcome to web"

The command asks each agent to write a file (here `motd`, holding the text). The controller
resends it every second until every expected agent has acknowledged or the deadline passes
(multicast is best-effort), then prints one line per agent. Exit code 0 when every expected
agent acknowledged success, 1 otherwise.
"""

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

import sixcast


def keygen(path):
    key = sixcast.SigningKey.generate()
    # Only the owner may read the private key, as with `sixcast keygen --signing`.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(key.to_file_text())
    Path(f"{path}.pub").write_text(key.public_key().to_file_text())
    print(f"wrote {path} and {path}.pub (fingerprint {key.public_key().fingerprint})")
    return 0


def parse_ack(payload):
    """The acknowledgement as a dict, or None when it is not one."""
    try:
        ack = json.loads(payload)
        if isinstance(ack["id"], str) and isinstance(ack["agent"], str) and isinstance(ack["ok"], bool):
            return ack
    except (ValueError, KeyError, TypeError):
        pass
    return None


def collect_acks(context, args, command, expected):
    """Sends `command` until every expected agent acknowledged it or the deadline passed."""
    commands = context.channel(args.channel)
    commands.sign_with(sixcast.SigningKey.from_file_text(Path(args.key).read_text()))
    acks = {}
    started = time.monotonic()
    deadline = started + args.deadline
    # Joined before the first send, so that no early acknowledgement is missed.
    with context.channel(f"{args.channel}.acks") as replies:
        next_send = started
        while not expected <= acks.keys():
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= next_send:
                commands.send(json.dumps(command))
                commands.flush()
                next_send = now + args.resend
            try:
                message = replies.recv(timeout=max(0.01, min(next_send, deadline) - now))
            except sixcast.TimeoutError:
                continue
            ack = parse_ack(message.payload)
            if ack is None or ack["id"] != command["id"] or ack["agent"] in acks:
                continue
            acks[ack["agent"]] = ack
            print(f"  {ack['agent']} answered after {time.monotonic() - started:.2f} s", flush=True)
    return acks


def push(args):
    expected = {name for name in args.expect.split(",") if name}
    if not expected:
        print("controller: --expect names no agent", file=sys.stderr)
        return 2
    command = {"id": uuid.uuid4().hex, "write": args.file, "content": args.content}
    print(f"command {command['id']}: write {args.file!r} on {args.channel!r}, expecting {', '.join(sorted(expected))}")
    with sixcast.Context() as context:
        acks = collect_acks(context, args, command, expected)
    for agent in sorted(expected):
        ack = acks.get(agent)
        if ack is None:
            print(f"{agent}: no acknowledgement within {args.deadline:g} s")
        else:
            print(f"{agent}: {'acknowledged' if ack['ok'] else 'failed'} ({ack.get('detail', '')})")
    for agent in sorted(acks.keys() - expected):
        print(f"{agent}: acknowledged, but was not expected")
    return 0 if all(acks.get(agent, {}).get("ok") for agent in expected) else 1


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="action", required=True)
    keygen_parser = commands.add_parser("keygen", help="write a new signing key and KEY_FILE.pub")
    keygen_parser.add_argument("key_file")
    push_parser = commands.add_parser("push", help="send a signed command and wait for acknowledgements")
    push_parser.add_argument("--key", required=True, help="the controller's signing key file")
    push_parser.add_argument("--expect", required=True, help="comma-separated names of the agents that must answer")
    push_parser.add_argument("--channel", default="webservers", help="default: webservers")
    push_parser.add_argument("--deadline", type=float, default=10.0, help="seconds to wait (default 10)")
    push_parser.add_argument("--resend", type=float, default=1.0, help="seconds between sends (default 1)")
    push_parser.add_argument("file", help="name of the file each agent writes in its directory")
    push_parser.add_argument("content", nargs="?", default="", help="what the file holds")
    args = parser.parse_args(argv)
    return keygen(args.key_file) if args.action == "keygen" else push(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
