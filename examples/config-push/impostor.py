#!/usr/bin/env python3
"""Sends commands the agents must refuse: one unsigned, one signed by a key they do not trust.

    impostor.py evil "not from the controller"

Both look exactly like the controller's commands. The agents' library drops them before the
agents see them, and each agent logs what was refused (`not_signed`, `untrusted_signer`); no
file is written and nobody acknowledges.
"""

import argparse
import json
import sys
import time
import uuid

import sixcast


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channel", default="webservers", help="default: webservers")
    parser.add_argument("--times", type=int, default=3, help="sends of each command, a second apart (default 3)")
    parser.add_argument("file")
    parser.add_argument("content", nargs="?", default="")
    args = parser.parse_args(argv)
    with sixcast.Context() as unsigned_context, sixcast.Context() as signed_context:
        unsigned = unsigned_context.channel(args.channel)
        wrongly_signed = signed_context.channel(args.channel)
        wrongly_signed.sign_with(sixcast.SigningKey.generate())
        for attempt in range(args.times):
            for channel in (unsigned, wrongly_signed):
                channel.send(json.dumps({"id": uuid.uuid4().hex, "write": args.file, "content": args.content}))
                channel.flush()
            if attempt + 1 < args.times:
                time.sleep(1.0)
    print(f"sent {args.times} unsigned and {args.times} wrongly signed commands to write {args.file!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
