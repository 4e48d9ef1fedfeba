"""One file over TCP to each of N receivers at once, for tests/bench/files-beside-peers.

    python3 tcpcopy.py serve PORT FILE N [TIMEOUT]   # on the sender: N connections, in parallel
    python3 tcpcopy.py fetch ADDR PORT OUTFILE [TIMEOUT]  # on each receiver

The server listens on [::]:PORT, prints "listening", and gives every connection its own thread
that sends an 8-byte length and then the file with socket.sendfile (os.sendfile); it exits once
N copies are sent (status 1 if one failed). The client writes what it reads to OUTFILE and exits
0 only when it got exactly the announced length. Both give up after TIMEOUT seconds (600 by
default)."""

import os
import socket
import struct
import sys
import threading
import time


def serve(port, path, count, timeout):
    size = os.path.getsize(path)
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("::", port))
    listener.listen(count)
    listener.settimeout(timeout)
    print("listening", flush=True)
    failures = []

    def send(conn, peer):
        try:
            with conn, open(path, "rb") as f:
                conn.settimeout(timeout)
                conn.sendall(struct.pack("!Q", size))
                sent = conn.sendfile(f, 0, size)  # os.sendfile, waiting within the timeout
                if sent != size:
                    raise OSError(f"sent {sent} of {size} bytes")
                conn.shutdown(socket.SHUT_WR)
                conn.recv(1)  # the client closes once it has everything
        except OSError as e:
            failures.append(f"{peer[0]}: {e}")

    threads = []
    try:
        for _ in range(count):
            conn, peer = listener.accept()
            thread = threading.Thread(target=send, args=(conn, peer))
            thread.start()
            threads.append(thread)
    except socket.timeout:
        failures.append(f"only {len(threads)} of {count} receivers connected")
    for thread in threads:
        thread.join()
    for failure in failures:
        print(f"tcpcopy serve: {failure}", file=sys.stderr)
    return 1 if failures else 0


def fetch(addr, port, out, timeout):
    deadline = time.monotonic() + timeout
    while True:  # the server may still be starting
        try:
            sock = socket.create_connection((addr, port), timeout=timeout)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline - 1:
                raise
            time.sleep(0.05)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with sock, open(out, "wb") as f:
        header = b""
        while len(header) < 8:
            chunk = sock.recv(8 - len(header))
            if not chunk:
                print("tcpcopy fetch: closed before the length", file=sys.stderr)
                return 1
            header += chunk
        (size,) = struct.unpack("!Q", header)
        got = 0
        while True:
            n = sock.recv_into(buf)
            if n == 0:
                break
            f.write(view[:n])
            got += n
    if got != size:
        print(f"tcpcopy fetch: got {got} of {size} bytes", file=sys.stderr)
        return 1
    return 0


def main(argv):
    if len(argv) in (5, 6) and argv[1] == "serve":
        timeout = float(argv[5]) if len(argv) == 6 else 600
        return serve(int(argv[2]), argv[3], int(argv[4]), timeout)
    if len(argv) in (5, 6) and argv[1] == "fetch":
        timeout = float(argv[5]) if len(argv) == 6 else 600
        return fetch(argv[2], int(argv[3]), argv[4], timeout)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
