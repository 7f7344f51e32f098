#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""qmp_cmd: run QMP commands on a QEMU monitor socket from test scripts.

    qmp_cmd.py SOCKET COMMAND [ARGUMENTS_JSON] [COMMAND [ARGUMENTS_JSON]]...

Prints each command's "return" as one JSON line; exits 1 with QEMU's error
(or 2 if the socket cannot be reached) at the first command that fails.
"""
import json
import socket
import sys


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(sys.argv[1])
    except OSError as e:
        print(f"qmp_cmd: {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    f = s.makefile("rw")

    def reply():
        while True:
            m = json.loads(f.readline())
            if "event" not in m:
                return m

    reply()  # greeting
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    reply()
    args = sys.argv[2:]
    while args:
        cmd = {"execute": args.pop(0)}
        if args and args[0].startswith("{"):
            cmd["arguments"] = json.loads(args.pop(0))
        f.write(json.dumps(cmd) + "\n")
        f.flush()
        r = reply()
        if "error" in r:
            print(f"qmp_cmd: {cmd['execute']}: {r['error'].get('desc')}", file=sys.stderr)
            return 1
        print(json.dumps(r.get("return")))
    return 0


sys.exit(main())
