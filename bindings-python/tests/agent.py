"""The Python conformance agent of the cross-language matrix; the command line and output are
specified in tests/conformance/agents/README.md. Uses only sixcast's public API.

    agent.py send <channel> <label>
    agent.py recv <channel> <count> <timeout-seconds>
"""

import json
import sys
import time

import sixcast

LARGE_SIZE = 1_048_576
LARGE_PAYLOAD = bytes(i % 251 for i in range(LARGE_SIZE))
TEXT_LIMIT = 64
EXIT_TIMEOUT = 3


def send(channel_name, label):
    with sixcast.Context() as context:
        channel = context.channel(channel_name)
        channel.send(f"hello from {label}")
        channel.send(b"")
        channel.send(LARGE_PAYLOAD)
        channel.flush()


def recv(channel_name, count, timeout):
    count, timeout = int(count), float(timeout)
    with sixcast.Context() as context:
        channel = context.channel(channel_name)
        channel.join()
        print("READY", flush=True)
        deadline = time.monotonic() + timeout
        for _ in range(count):
            try:
                message = channel.recv(timeout=max(0.0, deadline - time.monotonic()))
            except sixcast.TimeoutError:
                return EXIT_TIMEOUT
            payload = message.payload
            line = {
                "size": len(payload),
                "text": payload.decode("utf-8", "replace") if len(payload) <= TEXT_LIMIT else None,
                "pattern_ok": payload == LARGE_PAYLOAD,
                "seq": message.seq,
                "sender": message.sender,
            }
            print(json.dumps(line), flush=True)
    return 0


def main(args):
    if len(args) == 3 and args[0] == "send":
        send(args[1], args[2])
        return 0
    if len(args) == 4 and args[0] == "recv":
        return recv(args[1], args[2], args[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
