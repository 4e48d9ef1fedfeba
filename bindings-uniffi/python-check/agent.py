#!/usr/bin/env python3
"""The UniFFI-Python conformance agent: the command line of tests/conformance/agents/README.md,
through the generated `sixcast_ffi` module only (not the PyO3 package `sixcast`).

    agent.py send <channel> <label>
    agent.py recv <channel> <count> <timeout-seconds>

Run `bindings-uniffi/generate python` first; SIXCAST_FFI_PYTHON may name another folder that
holds the generated module.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("SIXCAST_FFI_PYTHON", str(Path(__file__).resolve().parent / "generated")))

import sixcast_ffi as ffi  # noqa: E402  (the generated module, found through sys.path above)

EXIT_TIMED_OUT = 3
LARGE_MESSAGE = bytes(i % 251 for i in range(1 << 20))


def send(channel_name, label):
    context = ffi.Context(ffi.Config())
    channel = context.channel(channel_name)
    for message in (f"hello from {label}".encode(), b"", LARGE_MESSAGE):
        channel.send(message)
    channel.flush()
    context.close()
    return 0


def receive(channel_name, count, timeout_seconds):
    context = ffi.Context(ffi.Config())
    channel = context.channel(channel_name)
    channel.join()
    print("READY", flush=True)
    deadline = time.monotonic() + timeout_seconds
    for _ in range(count):
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            return EXIT_TIMED_OUT
        try:
            message = channel.recv(remaining_ms)
        except ffi.SixcastError.Timeout:
            return EXIT_TIMED_OUT
        payload = message.payload
        line = {
            "size": len(payload),
            "text": payload.decode("utf-8", "replace") if len(payload) <= 64 else None,
            "pattern_ok": payload == LARGE_MESSAGE,
            "seq": message.seq,
            "sender": message.sender,
        }
        print(json.dumps(line), flush=True)
    context.close()
    return 0


def main(args):
    if len(args) == 3 and args[0] == "send":
        return send(args[1], args[2])
    if len(args) == 4 and args[0] == "recv":
        return receive(args[1], int(args[2]), float(args[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
