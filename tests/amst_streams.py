#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""amst_streams: both ends of the host connections an AMST session carries,
standing in for QEMU in tests and benches.

  serve ADDR --conns N --out FILE   accept N connections on ADDR, read each to
                                    EOF, record bytes and SHA-256 per
                                    connection, in the order accepted
  send ADDR --conns N --bytes B     open N connections one after another, send
        --seed S --out FILE         B seeded pseudo-random bytes on each, then
                                    wait for the peer to close; record the same

Options for benches (bench/bench_amst.sh):
  send --seconds S        send for S seconds instead of --bytes
  --no-hash               no SHA-256 ("sha256" is ""): the sender writes one
                          big buffer over and over (memoryview, no copy per
                          block), the receiver reads into one buffer
                          (recv_into): Python's per-byte cost is the kernel's
                          copy alone
  --block BYTES           bytes per send/recv call (default 1 MiB)
  serve --progress FILE   every --interval seconds (default 0.5) append a line
                          "SECONDS BYTES": time since the first connection was
                          accepted and bytes received on all connections so far

ADDR is unix:PATH or tcp:IP:PORT. Each connection's first 8 bytes are its
index, so the receiver can tell which sender connection it got. Both write
JSON: {"conns": [{"index", "bytes", "sha256", "seconds"}], "seconds",
"error"}; exit 0 only if every connection ended cleanly.
"""
import argparse
import hashlib
import json
import os
import random
import socket
import struct
import sys
import threading
import time

BLOCK = 1 << 20


def parse_addr(text):
    if text.startswith("unix:"):
        return socket.AF_UNIX, text[5:]
    if text.startswith("tcp:"):
        host, port = text[4:].rsplit(":", 1)
        return socket.AF_INET, (host, int(port))
    raise SystemExit(f"bad address {text!r}: unix:PATH or tcp:IP:PORT")


def serve(args):
    fam, addr = parse_addr(args.addr)
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_UNIX:
        try:
            os.unlink(addr)
        except FileNotFoundError:
            pass
    else:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    s.listen(64)
    s.settimeout(args.timeout)
    results = [None] * args.conns
    errors = []
    counts = [0] * args.conns  # bytes so far per connection, for --progress

    def reader(slot, c):
        h = hashlib.sha256()
        n = 0
        t0 = time.monotonic()
        first = b""
        try:
            c.settimeout(args.timeout)
            if args.no_hash:
                buf = bytearray(args.block)
                view = memoryview(buf)
                while True:
                    k = c.recv_into(view)
                    if not k:
                        break
                    if len(first) < 8:
                        first += bytes(view[: min(k, 8 - len(first))])
                    n += k
                    counts[slot] = n
            while not args.no_hash:
                b = c.recv(args.block)
                if not b:
                    break
                if len(first) < 8:
                    first += b[: 8 - len(first)]
                h.update(b)
                n += len(b)
                counts[slot] = n
        except OSError as e:
            errors.append(f"connection {slot}: {e}")
        finally:
            c.close()
        if args.raw:
            index = slot  # raw streams carry no index: accept order
        else:
            index = struct.unpack(">Q", first)[0] if len(first) == 8 else -1
        results[slot] = {"index": index, "bytes": n,
                         "sha256": "" if args.no_hash else h.hexdigest(),
                         "seconds": time.monotonic() - t0}

    done = threading.Event()
    started = []

    def progress():
        with open(args.progress, "w", buffering=1) as f:
            while not started and not done.wait(0.01):
                pass
            if not started:
                return
            k = 1
            while True:
                due = started[0] + k * args.interval
                if done.wait(max(0.0, due - time.monotonic())):
                    break
                f.write(f"{time.monotonic() - started[0]:.3f} {sum(counts)}\n")
                k += 1
            f.write(f"{time.monotonic() - started[0]:.3f} {sum(counts)}\n")

    mon = None
    if args.progress:
        mon = threading.Thread(target=progress)
        mon.start()
    threads = []
    t0 = time.monotonic()
    try:
        for i in range(args.conns):
            c, _ = s.accept()
            if not started:
                started.append(time.monotonic())
            t = threading.Thread(target=reader, args=(i, c))
            t.start()
            threads.append(t)
    except OSError as e:
        errors.append(f"accept: {e}")
    for t in threads:
        t.join()
    done.set()
    if mon:
        mon.join()
    s.close()
    out = {"conns": results, "seconds": time.monotonic() - t0,
           "error": "; ".join(errors)}
    with open(args.out, "w") as f:
        json.dump(out, f)
    return 0 if not errors and all(results) else 1


def send(args):
    fam, addr = parse_addr(args.addr)
    rng = random.Random(args.seed)
    files = args.files.split(",") if args.files else None
    if files and len(files) != args.conns:
        print("amst_streams: --files needs one file per connection", file=sys.stderr)
        return 2
    base = bytearray(rng.randbytes(args.block))
    results = [None] * args.conns
    errors = []
    socks = []
    for i in range(args.conns):
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.settimeout(args.timeout)
        try:
            c.connect(addr)
        except OSError as e:
            errors.append(f"connect {i}: {e}")
            break
        socks.append(c)

    def writer(i, c):
        h = hashlib.sha256()
        left = args.bytes
        blk = 0
        t0 = time.monotonic()
        until = t0 + args.seconds if args.seconds else None
        try:
            if files:
                with open(files[i], "rb") as f:  # the file as it is: no index
                    while True:
                        b = f.read(args.block)
                        if not b:
                            break
                        c.sendall(b)
                        h.update(b)
                        left -= len(b)
            elif args.no_hash:
                c.sendall(struct.pack(">Q", i))  # the connection's index
                sent = 8
                view = memoryview(bytes(base))
                while (until is None and sent < args.bytes) or \
                        (until is not None and time.monotonic() < until):
                    k = len(view) if until is not None else min(len(view), args.bytes - sent)
                    c.sendall(view[:k])
                    sent += k
                left = args.bytes - sent
            while not files and not args.no_hash and ((until is None and left > 0) or
                                        (until is not None and time.monotonic() < until)):
                b = bytearray(base)
                struct.pack_into(">QQ", b, 0, i, blk)  # unique blocks per connection
                b = bytes(b[: min(left, args.block)] if until is None else b)
                c.sendall(b)
                h.update(b)
                left -= len(b)
                blk += 1
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass
        except OSError as e:
            errors.append(f"connection {i}: {e}")
        finally:
            c.close()
        results[i] = {"index": i, "bytes": args.bytes - left,
                      "sha256": "" if args.no_hash else h.hexdigest(),
                      "seconds": time.monotonic() - t0}

    t0 = time.monotonic()
    threads = [threading.Thread(target=writer, args=(i, c)) for i, c in enumerate(socks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = {"conns": results, "seconds": time.monotonic() - t0,
           "error": "; ".join(errors)}
    with open(args.out, "w") as f:
        json.dump(out, f)
    return 0 if not errors and all(results) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["serve", "send"])
    p.add_argument("addr")
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--bytes", type=int, default=1 << 20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=0,
                   help="send: send for this long instead of --bytes")
    p.add_argument("--no-hash", action="store_true",
                   help="no SHA-256; one buffer sent or read over and over")
    p.add_argument("--block", type=int, default=BLOCK, help="bytes per send/recv call")
    p.add_argument("--files", help="send: F1,F2,...: connection i sends file i as it is "
                   "(no index); --bytes is ignored")
    p.add_argument("--raw", action="store_true",
                   help="serve: the streams carry no index (e.g. --files): number them "
                   "in accept order")
    p.add_argument("--progress", help="serve: append 'SECONDS BYTES' lines to this file")
    p.add_argument("--interval", type=float, default=0.5, help="--progress period, seconds")
    args = p.parse_args()
    if args.block < 16:
        p.error("--block must be at least 16")
    return serve(args) if args.mode == "serve" else send(args)


if __name__ == "__main__":
    sys.exit(main())
