#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""lv_relay: a byte relay that keeps the order of connections.

    lv_relay.py LISTEN TARGET      (each: unix:PATH or tcp:HOST:PORT)

Accepts connections at LISTEN; for each, connects to TARGET BEFORE it
accepts the next one, then copies bytes both ways. So connections reach
TARGET in the order they reached LISTEN. QEMU needs that for multifd: the
destination takes the first connection as the main channel, the others as
its multifd channels; a relay that forks per connection (socat fork) lets a
channel overtake the main connection and the migration fails ("Connection
reset by peer"). The NovaCron appliances must keep the order the same way.

Logs to stderr: "listening ...", then "conn N accepted" and "conn N done
IN OUT" (bytes each way) or "conn N failed: ...". SIGTERM stops it; a unix
LISTEN socket is removed.
"""
import os
import signal
import socket
import sys
import threading


def log(msg):
    print(f"lv_relay[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def parse(addr):
    kind, _, rest = addr.partition(":")
    if kind == "unix" and rest:
        return socket.AF_UNIX, rest
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return socket.AF_INET, (host, int(port))
    sys.exit(f"lv_relay: bad address '{addr}' (unix:PATH or tcp:HOST:PORT)")


def listen(addr):
    fam, a = addr
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_UNIX:
        try:
            os.unlink(a)
        except FileNotFoundError:
            pass
    else:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(a)
    s.listen(64)
    return s


def connect(addr):
    fam, a = addr
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.connect(a)
    except OSError:
        s.close()
        raise
    return s


class Pair:
    """Two sockets joined; closed when both directions have ended."""

    def __init__(self, n, a, b):
        self.n, self.a, self.b = n, a, b
        self.lock = threading.Lock()
        self.left = 2
        self.bytes = [0, 0]

    def pump(self, i, src, dst):
        try:
            while True:
                data = src.recv(1 << 18)
                if not data:
                    break
                dst.sendall(data)
                self.bytes[i] += len(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError as e:
            log(f"conn {self.n}: {e}")
            for s in (self.a, self.b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        with self.lock:
            self.left -= 1
            last = self.left == 0
        if last:
            log(f"conn {self.n} done {self.bytes[0]} {self.bytes[1]}")
            self.a.close()
            self.b.close()

    def start(self):
        for i, (s, d) in enumerate(((self.a, self.b), (self.b, self.a))):
            threading.Thread(target=self.pump, args=(i, s, d), daemon=True).start()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: lv_relay.py LISTEN TARGET (unix:PATH or tcp:HOST:PORT)")
    src, dst = parse(sys.argv[1]), parse(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ls = listen(src)
    log(f"listening on {sys.argv[1]}, to {sys.argv[2]}")
    n = 0
    try:
        while True:
            c, _ = ls.accept()
            n += 1
            log(f"conn {n} accepted")
            try:
                d = connect(dst)
            except OSError as e:
                log(f"conn {n} failed: connect {sys.argv[2]}: {e}")
                c.close()
                continue
            Pair(n, c, d).start()
    finally:
        if src[0] == socket.AF_UNIX:
            try:
                os.unlink(src[1])
            except OSError:
                pass


if __name__ == "__main__":
    main()
