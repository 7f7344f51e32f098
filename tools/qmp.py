#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""qmp.py: a small QMP client and the migration helpers of the QEMU test harness.

  qmp.py SOCKET COMMAND [JSON-ARGS]     run one QMP command, print its return as JSON
  qmp.py SOCKET --wait-migration [--timeout S] [--stall S]
                                        wait until query-migrate says completed (exit 0)
                                        or failed/cancelled, or its transferred bytes stood
                                        still for --stall seconds (default 60) (exit 1);
                                        print its last answer
  qmp.py SOCKET --wait-status STATUS [--timeout S]
                                        wait until query-status says STATUS (e.g. paused)
  qmp.py SOCKET --events FILE          append every event (one JSON object per line, with
                                        QEMU's timestamp) to FILE until QEMU closes the
                                        socket or SIGTERM; the first line written,
                                        {"ready": true}, says the session is set up
  qmp.py --migration-at EVENTS STATUS  when (host wall clock, s) the first MIGRATION event
                                        of STATUS (setup, completed, ...) came; "null" if none
  qmp.py --downtime SRC_EVENTS DST_EVENTS
                                        end-to-end downtime in ms from two --events files:
                                        from the source's last STOP to the destination's
                                        MIGRATION "completed" (it holds the whole state and
                                        could run); "null" if either is missing
  qmp.py --compare FILE_A FILE_B [--show N]
                                        compare two RAM dumps (pmemsave) page by page:
                                        print the number of differing 4 KiB pages and the
                                        first N offsets; exit 0 only if they are equal
  qmp.py --relay LISTEN CONNECT [--record DIR] [--conns N] [--stats FILE]
                                        a byte relay: every connection accepted on LISTEN
                                        (unix:PATH or tcp:HOST:PORT) is joined to a new
                                        connection to CONNECT; with --record each
                                        connection's forward bytes go to DIR/conn-I.bin
                                        (I = accept order from 0). After N connections have
                                        come and gone (or on SIGTERM) it writes per-connection
                                        byte counts to FILE (JSON) and exits.

Only the Python standard library is used. Errors go to stderr, exit status 1 (2 for usage).
"""
import json
import mmap
import os
import signal
import socket
import sys
import threading
import time


def die(msg, code=1):
    print(f"qmp.py: {msg}", file=sys.stderr)
    sys.exit(code)


class QMP:
    """One QMP session on a UNIX socket: greeting, qmp_capabilities, then commands."""

    def __init__(self, path, timeout=600.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + min(timeout, 5.0)
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError) as e:
                if time.monotonic() > deadline:
                    raise OSError(f"cannot connect to {path}: {e}") from e
                time.sleep(0.05)
        self.buf = b""
        # QEMU 7.2 has been seen to write an event (MIGRATION_PASS) on a new connection
        # before its greeting, right after another client of the same socket left. The
        # C client (cp_qmp.c) and qmp_cmd.py skip events there too.
        greeting = self._read()
        while "event" in greeting:
            greeting = self._read()
        if "QMP" not in greeting:
            raise OSError(f"{path} is not a QMP socket: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise OSError("QEMU closed the QMP connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, args=None):
        """Run COMMAND; return its 'return' value; raise RuntimeError on a QMP error."""
        msg = {"execute": command}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                err = reply["error"]
                raise RuntimeError(f"{command}: {err.get('class')}: {err.get('desc')}")
            return reply.get("return")

    def close(self):
        self.sock.close()


def wait_for(q, query, done, timeout, progress=None, stall=0.0):
    """Poll QUERY until DONE(answer) is True/False, TIMEOUT passes, or PROGRESS(answer)
    has not changed for STALL seconds (0: no stall check)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        ans = q.execute(query)
        verdict = done(ans)
        if verdict is not None:
            return verdict, ans
        now = time.monotonic()
        if progress and stall > 0:
            p = progress(ans)
            if p != last:
                last, since = p, now
            elif now - since > stall:
                print(f"qmp.py: no progress for {stall:.0f} s", file=sys.stderr)
                return False, ans
        if now > deadline:
            print(f"qmp.py: timed out after {timeout:.0f} s", file=sys.stderr)
            return False, ans
        time.sleep(0.1)


def migration_done(ans):
    status = ans.get("status")
    # A QEMU that was a migration's destination answers that incoming
    # migration's "completed" (without total-time) until its own outgoing one
    # has left state none (e.g. while a TCP connect takes an RTT).
    # QEMU 7.2 also says "completed" a moment before it has worked out
    # total-time and downtime (both 0 until then): not done yet.
    if status == "completed" and ans.get("total-time", 0) > 0:
        return True
    if status in ("failed", "cancelled"):
        return False
    return None


def log_events(q, out_path):
    """Write QEMU's events to OUT_PATH, one JSON line each, until the socket closes."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    q.sock.settimeout(None)
    with open(out_path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"ready": True}) + "\n")
        out.flush()
        while True:
            try:
                msg = q._read()
            except (OSError, ValueError):
                return 0
            if "event" in msg:
                out.write(json.dumps(msg) + "\n")
                out.flush()


def event_time(msg):
    ts = msg.get("timestamp", {})
    return ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6


def read_events(path):
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and "event" in msg:
                events.append(msg)
    return events


def downtime_ms(src_path, dst_path):
    """ms from the source's last STOP before the destination completed its incoming
    migration to that completion (QEMU stamps events with the host's wall clock, the
    same for both QEMUs on one machine); None if either event is missing."""
    done = [event_time(m) for m in read_events(dst_path)
            if m["event"] == "MIGRATION" and m.get("data", {}).get("status") == "completed"]
    if not done:
        return None
    stops = [event_time(m) for m in read_events(src_path)
             if m["event"] == "STOP" and event_time(m) <= done[0]]
    if not stops:
        return None
    return round((done[0] - stops[-1]) * 1000)


def compare(path_a, path_b, show):
    size_a, size_b = os.path.getsize(path_a), os.path.getsize(path_b)
    if size_a != size_b:
        print(f"sizes differ: {path_a} {size_a} bytes, {path_b} {size_b} bytes")
        return 1
    if size_a == 0:
        print("both dumps are empty")
        return 1
    page, chunk = 4096, 1 << 20
    diffs, first = 0, []
    with open(path_a, "rb") as fa, open(path_b, "rb") as fb:
        ma = mmap.mmap(fa.fileno(), 0, access=mmap.ACCESS_READ)
        mb = mmap.mmap(fb.fileno(), 0, access=mmap.ACCESS_READ)
        for off in range(0, size_a, chunk):
            end = min(off + chunk, size_a)
            if ma[off:end] == mb[off:end]:
                continue
            for p in range(off, end, page):
                if ma[p:p + page] != mb[p:p + page]:
                    diffs += 1
                    if len(first) < show:
                        first.append(p)
        ma.close()
        mb.close()
    pages = (size_a + page - 1) // page
    offsets = " ".join(hex(o) for o in first)
    print(f"pages {pages} differing {diffs}" + (f" first {offsets}" if diffs else ""))
    return 0 if diffs == 0 else 1


def parse_addr(addr):
    if addr.startswith("unix:"):
        return socket.AF_UNIX, addr[5:]
    if addr.startswith("tcp:"):
        host, _, port = addr[4:].rpartition(":")
        return socket.AF_INET, (host or "127.0.0.1", int(port))
    die(f"bad address '{addr}': want unix:PATH or tcp:HOST:PORT", 2)


class Relay:
    def __init__(self, listen, connect, record, conns, stats):
        self.listen, self.connect_to = parse_addr(listen), parse_addr(connect)
        self.record, self.want, self.stats_path = record, conns, stats
        self.lock = threading.Lock()
        self.conns = []  # per connection: dict of counters
        self.finished = 0
        self.done = threading.Event()

    def _dial(self):
        family, addr = self.connect_to
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket(family, socket.SOCK_STREAM)
            try:
                s.connect(addr)
                return s
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @staticmethod
    def _pump(src, dst, info, key, out):
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        try:
            while True:
                n = src.recv_into(buf)
                if n == 0:
                    break
                if out:
                    out.write(view[:n])
                dst.sendall(view[:n])
                info[key] += n
        except OSError as e:
            info["error"] = str(e)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _serve(self, index, client, upstream, error):
        info = {"index": index, "bytes": 0, "back_bytes": 0, "file": None}
        with self.lock:
            self.conns.append(info)
        out = None
        if upstream is None:
            info["error"] = f"connect: {error}"
            client.close()
            self._finish()
            return
        if self.record:
            info["file"] = os.path.join(self.record, f"conn-{index}.bin")
            out = open(info["file"], "wb", buffering=4 << 20)
        t0 = time.monotonic()
        back = threading.Thread(target=self._pump,
                                args=(upstream, client, info, "back_bytes", None), daemon=True)
        back.start()
        self._pump(client, upstream, info, "bytes", out)
        back.join()
        info["seconds"] = round(time.monotonic() - t0, 3)
        if out:
            out.close()
        client.close()
        upstream.close()
        self._finish()

    def _finish(self):
        with self.lock:
            self.finished += 1
            if self.want and self.finished >= self.want:
                self.done.set()

    def write_stats(self):
        with self.lock:
            conns = sorted((dict(c) for c in self.conns), key=lambda c: c["index"])
        doc = {"conns": conns, "bytes": sum(c["bytes"] for c in conns),
               "back_bytes": sum(c["back_bytes"] for c in conns)}
        if self.stats_path:
            tmp = self.stats_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(doc, f, indent=1)
            os.replace(tmp, self.stats_path)
        else:
            print(json.dumps(doc))

    def run(self):
        family, addr = self.listen
        ls = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            try:
                os.unlink(addr)
            except FileNotFoundError:
                pass
        else:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(addr)
        ls.listen(64)
        if self.record:
            os.makedirs(self.record, exist_ok=True)
        signal.signal(signal.SIGTERM, lambda *_: self.done.set())
        signal.signal(signal.SIGINT, lambda *_: self.done.set())

        def acceptor():
            index = 0
            while not self.done.is_set():
                try:
                    client, _ = ls.accept()
                except OSError:
                    return
                # Dial here, not in the connection's thread: the far end sees
                # connections in the order they came (QEMU 7.2 takes its
                # first incoming connection for the main channel, and a
                # multifd channel dialled ahead of it stalls the migration).
                upstream, error = None, None
                try:
                    upstream = self._dial()
                except OSError as e:
                    error = e
                threading.Thread(target=self._serve, args=(index, client, upstream, error),
                                 daemon=True).start()
                index += 1
                if self.want and index >= self.want:
                    return

        threading.Thread(target=acceptor, daemon=True).start()
        while not self.done.wait(0.2):
            pass
        ls.close()
        if family == socket.AF_UNIX:
            try:
                os.unlink(addr)
            except OSError:
                pass
        self.write_stats()
        return 0


def opt(args, name, default=None, conv=str):
    if name in args:
        i = args.index(name)
        if i + 1 >= len(args):
            die(f"{name} needs a value", 2)
        value = args[i + 1]
        del args[i:i + 2]
        try:
            return conv(value)
        except ValueError:
            die(f"bad value for {name}: '{value}'", 2)
    return default


def main(argv):
    args = list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    if args[0] == "--compare":
        show = opt(args, "--show", 8, int)
        if len(args) != 3:
            die("usage: qmp.py --compare FILE_A FILE_B [--show N]", 2)
        try:
            return compare(args[1], args[2], show)
        except OSError as e:
            die(str(e))
    if args[0] == "--downtime":
        if len(args) != 3:
            die("usage: qmp.py --downtime SRC_EVENTS DST_EVENTS", 2)
        try:
            ms = downtime_ms(args[1], args[2])
        except OSError as e:
            die(str(e))
        print("null" if ms is None else ms)
        return 0
    if args[0] == "--migration-at":
        if len(args) != 3:
            die("usage: qmp.py --migration-at EVENTS STATUS", 2)
        try:
            at = [event_time(m) for m in read_events(args[1]) if m["event"] == "MIGRATION"
                  and m.get("data", {}).get("status") == args[2]]
        except OSError as e:
            die(str(e))
        print(f"{at[0]:.6f}" if at else "null")
        return 0
    if args[0] == "--relay":
        record = opt(args, "--record")
        conns = opt(args, "--conns", 0, int)
        stats = opt(args, "--stats")
        if len(args) != 3:
            die("usage: qmp.py --relay LISTEN CONNECT [--record DIR] [--conns N] [--stats FILE]", 2)
        return Relay(args[1], args[2], record, conns, stats).run()

    timeout = opt(args, "--timeout", 600.0, float)
    stall = opt(args, "--stall", 60.0, float)
    if len(args) < 2:
        die("usage: qmp.py SOCKET COMMAND [JSON-ARGS] (see --help)", 2)
    path, command = args[0], args[1]
    try:
        q = QMP(path, timeout)
    except (OSError, ValueError) as e:
        die(str(e))
    try:
        if command == "--wait-migration":
            ok, ans = wait_for(q, "query-migrate", migration_done, timeout,
                               lambda a: (a.get("status"), a.get("ram", {}).get("transferred")),
                               stall)
            print(json.dumps(ans))
            return 0 if ok else 1
        if command == "--events":
            if len(args) != 3:
                die("usage: qmp.py SOCKET --events FILE", 2)
            return log_events(q, args[2])
        if command == "--wait-status":
            if len(args) != 3:
                die("usage: qmp.py SOCKET --wait-status STATUS", 2)
            want = args[2]
            ok, ans = wait_for(q, "query-status",
                               lambda a: True if a.get("status") == want else None, timeout)
            print(json.dumps(ans))
            return 0 if ok else 1
        cargs = None
        if len(args) > 2:
            try:
                cargs = json.loads(args[2])
            except ValueError as e:
                die(f"bad JSON arguments '{args[2]}': {e}", 2)
            if not isinstance(cargs, dict):
                die("JSON arguments must be an object", 2)
        if len(args) > 3:
            die("too many arguments", 2)
        print(json.dumps(q.execute(command, cargs)))
        return 0
    except RuntimeError as e:
        die(str(e))
    except OSError as e:
        die(f"QMP: {e}")
    finally:
        q.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
