"""One process of the performance suite, in Python: the sixcast binding ("py-sixcast") or pyzmq
("pyzmq") sending or receiving. Same protocol as the suite's own roles (tests/bench/src/roles.rs):
the spec is argv[1] (JSON); print "ready" once set up, wait for "go" on stdin, run, print one
JSON object of figures."""

import json
import resource
import sys
import time


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ready():
    print("ready", flush=True)
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"peer.py: expected go, got {line!r}")


def sender_report(sent, began, cpu):
    return {"sent": sent, "seconds": time.monotonic() - began, "cpu_seconds": cpu_seconds() - cpu}


class Tally:
    def __init__(self):
        self.began = time.monotonic()
        self.cpu = cpu_seconds()
        self.received = 0
        self.last = 0.0

    def add(self, count):
        if count:
            self.received += count
            self.last = time.monotonic() - self.began

    def report(self):
        return {
            "received": self.received,
            "seconds_to_last": self.last,
            "cpu_seconds": cpu_seconds() - self.cpu,
        }


def sixcast_context(spec):
    import sixcast

    return sixcast.Context(max_datagram_size=spec["datagram"], hop_limit=spec["hops"])


def py_sixcast_send(spec):
    context = sixcast_context(spec)
    channel = context.channel(spec["channel"])
    payload = b"\x5c" * spec["size"]
    send = channel.send
    ready()
    began, cpu, sent = time.monotonic(), cpu_seconds(), 0
    while time.monotonic() - began < spec["seconds"]:
        for _ in range(64):
            send(payload)
        sent += 64
    channel.flush()
    report = sender_report(sent, began, cpu)
    context.close()
    return report


def py_sixcast_recv(spec):
    import sixcast

    context = sixcast_context(spec)
    channel = context.channel(spec["channel"])
    channel.join()
    until = spec["seconds"] + spec["drain"]
    ready()
    tally = Tally()
    deadline = tally.began + until
    recv, try_recv = channel.recv, channel.try_recv
    while True:
        # Take what is queued without waiting (or reading the clock); wait only when nothing is.
        taken = 0
        while try_recv() is not None:
            taken += 1
        tally.add(taken)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            recv(timeout=remaining)
            tally.add(1)
        except sixcast.TimeoutError:
            break
    context.close()
    return tally.report()


def pyzmq_send(spec):
    import zmq

    context = zmq.Context()
    socket = context.socket(zmq.XPUB)
    socket.setsockopt(zmq.IPV6, 1)
    socket.setsockopt(zmq.XPUB_VERBOSE, 1)
    # Lossless: block at the high-water mark instead of dropping.
    socket.setsockopt(zmq.XPUB_NODROP, 1)
    socket.bind(f"tcp://[::]:{spec['port']}")
    socket.setsockopt(zmq.RCVTIMEO, 15000)
    for _ in range(spec["subscribers"]):
        socket.recv()
    payload = b"\x5c" * spec["size"]
    send = socket.send
    ready()
    began, cpu, sent = time.monotonic(), cpu_seconds(), 0
    while time.monotonic() - began < spec["seconds"]:
        for _ in range(64):
            send(payload)
        sent += 64
    report = sender_report(sent, began, cpu)
    socket.send(b"")  # the end mark
    return report


def pyzmq_recv(spec):
    import zmq

    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.IPV6, 1)
    socket.setsockopt(zmq.RCVTIMEO, 100)
    socket.connect(spec["connect"])
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    until = spec["seconds"] + 20
    recv = socket.recv
    ready()
    tally = Tally()
    ended = False
    while not ended and time.monotonic() - tally.began < until:
        # Take what is queued without waiting (or reading the clock); wait only when nothing is.
        taken = 0
        try:
            while True:
                if not recv(zmq.NOBLOCK):
                    ended = True
                    break
                taken += 1
        except zmq.Again:
            pass
        tally.add(taken)
        if ended:
            break
        try:
            if not recv():
                break
            tally.add(1)
        except zmq.Again:
            pass
    return tally.report()


ROLES = {
    ("py-sixcast", "send"): py_sixcast_send,
    ("py-sixcast", "recv"): py_sixcast_recv,
    ("pyzmq", "send"): pyzmq_send,
    ("pyzmq", "recv"): pyzmq_recv,
}

if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    role = ROLES.get((spec["system"], spec["role"]))
    if role is None:
        raise SystemExit(f"peer.py: no role {spec['role']} for {spec['system']}")
    print(json.dumps(role(spec)), flush=True)
