#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# integration_skeleton: novacron-dp on a memif vdev and novacron-cp attached to
# it as a DPDK secondary, driven through novactl: status, health, boot report,
# config get/set (forwarded to the dataplane through the rings), dp ping, DPDK
# telemetry, bad configs and bad requests (the processes stay up), a control
# plane killed with SIGKILL and restarted over its stale socket, and clean
# stops with SIGTERM and the shutdown method.
set -uo pipefail

B=${NC_BUILD:?}
S=${NC_SOURCE:?}
DP=$B/dataplane/novacron-dp
CP=$B/controlplane/novacron-cp
CTL=$B/tools/novactl

work=$(mktemp -d /tmp/nc-it.XXXXXX)
rt=$work/run
prefix=ncit$$
dp_pid=
cp_pid=
failures=0
checks=0

cleanup() {
	for p in $cp_pid $dp_pid; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $cp_pid $dp_pid; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$work" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT

ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() {
	checks=$((checks + 1)); failures=$((failures + 1))
	echo "not ok $checks - $*"
}
# expect DESCRIPTION EXPECTED_EXIT COMMAND...: run, check exit code, keep output in $out
expect() {
	local what=$1 want=$2
	shift 2
	out=$("$@" 2>&1)
	local rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$what"; else
		not_ok "$what (exit $rc, wanted $want)"; echo "$out" | sed 's/^/#   /'
	fi
}
# contains DESCRIPTION NEEDLE: $out must contain NEEDLE
contains() {
	if grep -qF -- "$2" <<<"$out"; then ok "$1"; else
		not_ok "$1: no '$2' in:"; echo "$out" | sed 's/^/#   /'
	fi
}
alive() {
	if kill -0 "$2" 2>/dev/null; then ok "$1 still running"; else not_ok "$1 died"; fi
}
ctl() { "$CTL" --runtime-dir "$rt" "$@"; }

wait_ready() { # wait_ready dp|cp PID
	local flag=
	[ "$1" = dp ] && flag=--dp
	for _ in $(seq 200); do
		if ctl $flag --json status 2>/dev/null | grep -q '"state": "ready"'; then return 0; fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
if [ "${free:-0}" -lt 64 ]; then
	echo "Bail out! needs hugepages (64 x 2 MiB free, have ${free:-0}): run tools/novacron setup"
	exit 1
fi

mkdir -p "$rt"
cfg=$work/novacron.yaml
cat >"$cfg" <<EOF
# integration test configuration
runtime:
  dir: $rt
log:
  level: notice
dataplane:
  lcores: "0-1"
  file_prefix: $prefix
  hugepages: true
  ports:
    - "memif:role=server,socket=$rt/memif.sock,secret=memif-sk-Q7"
  mbufs: 4095
controlplane:
  dp_timeout_ms: 2000
  attach_retries: 3
amst:
  psk: skeleton-secret-0123456789
EOF

echo "# bad configurations: clear errors, exit 2, nothing started"
bad=$work/bad.yaml
sed 's/  mbufs: 4095/  mbufs: 70x1/' "$cfg" >"$bad"
expect "bad integer refused" 2 "$DP" --config "$bad"
contains "error names file, line and key" "$bad:12: dataplane.mbufs"
sed 's/  mbufs: 4095/  mbuf: 4095/' "$cfg" >"$bad"
expect "unknown key refused" 2 "$DP" --config "$bad"
contains "unknown key named with its line" "$bad:12: unknown key 'dataplane.mbuf'"
sed 's/  hugepages: true/  hugepages: maybe/' "$cfg" >"$bad"
expect "bad boolean refused" 2 "$CP" --config "$bad"
contains "bad boolean named" "dataplane.hugepages"
expect "missing file refused" 2 "$DP" --config "$work/nope.yaml"
contains "missing file named" "$work/nope.yaml"
sed 's/memif:role=server/memif:rol=server/' "$cfg" >"$bad"
expect "bad port argument refused" 2 "$DP" --config "$bad"
contains "bad port argument named" "unknown argument 'rol'"
expect "bad --set refused" 2 "$DP" --config "$cfg" --set dataplane.rx_burst=4096
contains "--set out of range" "dataplane.rx_burst"
expect "unknown option refused" 2 "$DP" --frobnicate
[ -S "$rt/dp.sock" ] && not_ok "a refused config left a socket" || ok "no socket left by refused configs"

echo "# a control plane without a dataplane gives up cleanly"
expect "cp without dp fails its boot" 1 "$CP" --config "$cfg" --set controlplane.attach_retries=1
contains "cp says why" "is novacron-dp running?"

echo "# boot"
"$DP" --config "$cfg" >"$work/dp.log" 2>&1 &
dp_pid=$!
if wait_ready dp "$dp_pid"; then ok "dataplane ready"; else
	not_ok "dataplane not ready"; sed 's/^/#   /' "$work/dp.log"; exit 1
fi
"$CP" --config "$cfg" >"$work/cp.log" 2>&1 &
cp_pid=$!
if wait_ready cp "$cp_pid"; then ok "control plane ready"; else
	not_ok "control plane not ready"; sed 's/^/#   /' "$work/cp.log"; exit 1
fi
[ "$(stat -c %a "$rt/cp.sock")" = 660 ] && ok "socket mode 0660" || not_ok "socket mode"

echo "# queries"
expect "status" 0 ctl status
contains "status table shows ready" "ready"
contains "status shows the dataplane attached" "attached"
expect "status --json" 0 ctl --json status
contains "cp status has the dataplane's pid" "\"pid\": $dp_pid"
contains "memif port listed" "net_memif0"
expect "dp status --json" 0 ctl --dp --json status
contains "dp status has the port's devargs" "socket-abstract=no"
contains "memif secret shown as set" "secret=(set)"
if grep -qF "memif-sk-Q7" <<<"$out"; then
	not_ok "the memif secret is shown in status"
else
	ok "the memif secret is not in status"
fi
# A socket file (not memif's default abstract name) under the 0750 directory.
if [ -S "$rt/memif.sock" ]; then ok "memif socket is a file"; else not_ok "no socket file $rt/memif.sock"; fi
expect "health ok" 0 ctl health
contains "health lists dplink" "dplink"
expect "dp health ok" 0 ctl --dp health
contains "dp health lists workers" "workers"
expect "boot report" 0 ctl --json boot-report
for c in dataplane eal dplink control-socket runtime; do contains "cp boot report has $c" "\"$c\""; done
contains "boot report has phases" "\"phases\""
expect "dp boot report" 0 ctl --dp boot-report
for c in eal shm ports workers telemetry; do contains "dp boot report has $c" "$c"; done
expect "help" 0 ctl help
contains "help lists dp.ping" "dp.ping"
expect "config get" 0 ctl config get log.level
contains "config get shows the value" "notice"

echo "# the round trip through the rings"
expect "dp ping" 0 ctl --json dp ping 50
contains "ping reports latency" "rtt_avg_us"
contains "ping made 50 round trips" "\"count\": 50"

echo "# run-time config, forwarded to the dataplane"
expect "set poll_mode busy" 0 ctl config set dataplane.poll_mode busy
expect "dp status" 0 ctl --dp --json status
contains "dataplane switched to busy" "\"poll_mode\": \"busy\""
expect "set poll_mode adaptive" 0 ctl config set dataplane.poll_mode adaptive
expect "dp status" 0 ctl --dp --json status
contains "dataplane back to adaptive" "\"poll_mode\": \"adaptive\""
expect "set log.level" 0 ctl --json config set log.level info
contains "set reports the previous value" "\"previous\": \"notice\""
expect "non-runtime key refused" 1 ctl config set dataplane.lcores 0
contains "refusal says why" "cannot change while running"
expect "out of range refused" 1 ctl config set dataplane.idle_polls 0
contains "range error names the key" "dataplane.idle_polls"
expect "bad integer refused at run time" 1 ctl config set dataplane.sleep_max_us "4 threads"
expect "unknown key refused" 1 ctl config set no.such 1
expect "bad enum refused" 1 ctl config set dataplane.poll_mode maybe
expect "value kept after refusals" 0 ctl --dp --json status
contains "dataplane still adaptive" "\"poll_mode\": \"adaptive\""
# A command the control plane gave up on (the dataplane stopped) must not
# be done when the dataplane goes on: both would then disagree.
kill -STOP "$dp_pid"
expect "config.set while the dataplane is stopped fails" 1 ctl config set dataplane.poll_mode busy
contains "... the dataplane did not answer, nothing changed" "did not answer"
kill -CONT "$dp_pid"
sleep 0.5
expect "dp status after it went on" 0 ctl --dp --json status
contains "the stopped dataplane did not take the late command" "\"poll_mode\": \"adaptive\""
expect "the control plane agrees" 0 ctl --json config get dataplane.poll_mode
contains "... adaptive there too" "\"value\": \"adaptive\""

echo "# bad requests: JSON errors, processes stay up"
expect "not JSON" 1 ctl raw 'hello there'
contains "parse_error" '"code":"parse_error"'
expect "unknown method" 1 ctl raw '{"method":"frobnicate"}'
contains "unknown_method" '"code":"unknown_method"'
expect "wrong parameter type" 1 ctl raw '{"method":"dp.ping","params":{"count":"ten"}}'
contains "invalid_params" "'count' must be an integer, got string"
expect "params not an object" 1 ctl raw '{"method":"status","params":[]}'
contains "invalid_params for array" '"code":"invalid_params"'
expect "unknown parameter" 1 ctl raw '{"method":"status","params":{"x":1}}'
contains "unknown parameter named" "unknown parameter 'x'"
expect "missing parameter" 1 ctl raw '{"method":"config.set","params":{"key":"log.level"}}'
contains "missing parameter named" "missing required parameter 'value'"
expect "ping count out of range" 1 ctl dp ping 100000
expect "binary junk" 1 ctl raw "$(printf '\x01\x02\x7f{{{')"
big=$(head -c 70000 /dev/zero | tr '\0' 'a')
expect "oversized request" 1 ctl raw "$big"
contains "too_large" '"code":"too_large"'
expect "usage error exit code" 2 ctl frobnicate
expect "a rate of nan is a usage error" 2 ctl session set s1 nan
contains "the rate error says why" "RATE_MBPS must be a number"
expect "a rate of inf is a usage error" 2 ctl session open s1 send 10.0.0.2 unix:/tmp/q inf
expect "config.get hides amst.psk" 0 ctl config get amst.psk
contains "amst.psk shown as set, not its value" "(set, not shown)"
lacks() { # lacks DESCRIPTION NEEDLE: $out must not contain NEEDLE
	if grep -qF -- "$2" <<<"$out"; then
		not_ok "$1: '$2' in:"; echo "$out" | sed 's/^/#   /'
	else ok "$1"; fi
}
lacks "the key itself is not in the answer" skeleton-secret
expect "config.get of all keys" 0 ctl --dp --json config get
contains "... amst.psk listed" '"amst.psk"'
lacks "... without its value" skeleton-secret
expect "no socket exit code" 3 "$CTL" --socket "$work/none.sock" status
alive "novacron-dp" "$dp_pid"
alive "novacron-cp" "$cp_pid"
expect "status after bad requests" 0 ctl status

echo "# DPDK telemetry"
tel=/var/run/dpdk/$prefix/dpdk_telemetry.v2
out=$(python3 - "$tel" <<'PY' 2>&1
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.recv(1024)
for cmd in ("/novacron/status", "/novacron/ports", "/novacron/workers"):
    s.send(cmd.encode())
    print(json.dumps(json.loads(s.recv(65536).decode())))
PY
)
contains "telemetry status" '"process": "novacron-dp"'
contains "telemetry ports" "net_memif0"
contains "telemetry workers" "worker0"

echo "# a killed control plane leaves a stale socket; a new one rebinds it"
kill -KILL "$cp_pid"
wait "$cp_pid" 2>/dev/null
[ -S "$rt/cp.sock" ] && ok "stale socket left behind" || not_ok "no stale socket to test"
"$CP" --config "$cfg" >"$work/cp2.log" 2>&1 &
cp_pid=$!
if wait_ready cp "$cp_pid"; then ok "control plane restarted over the stale socket"; else
	not_ok "control plane did not restart"; sed 's/^/#   /' "$work/cp2.log"
fi
expect "ping after restart" 0 ctl dp ping 5
expect "second cp refused while one serves" 1 "$CP" --config "$cfg"
contains "refusal says the socket is served" "another process is serving"
contains "and comes before anything starts (no ring attached)" "boot refused"
alive "first control plane" "$cp_pid"
expect "the first still gets its replies" 0 ctl dp ping 5

echo "# the dataplane goes away: the control plane restarts itself and attaches to the next"
in_log() { # in_log FILE TEXT SECONDS
	for _ in $(seq $(($3 * 10))); do grep -q "$2" "$1" && return 0; sleep 0.1; done
	return 1
}
kill -KILL "$dp_pid"
wait "$dp_pid" 2>/dev/null
if in_log "$work/cp2.log" "waiting for the next dataplane" 15; then
	ok "the control plane restarted itself to wait for the next dataplane"
else
	not_ok "no restart to wait"; sed 's/^/#   /' "$work/cp2.log"
fi
alive "the control plane (same pid)" "$cp_pid"
"$DP" --config "$cfg" >"$work/dp3.log" 2>&1 &
dp_pid=$!
if wait_ready dp "$dp_pid"; then ok "a new dataplane starts beside it"; else
	not_ok "the new dataplane did not start"; sed 's/^/#   /' "$work/dp3.log"
fi
if wait_ready cp "$cp_pid"; then ok "the control plane attached to it"; else
	not_ok "the control plane did not attach"; sed 's/^/#   /' "$work/cp2.log"
fi
expect "ping through the new dataplane" 0 ctl dp ping 5
out=$(ctl --json health 2>&1)
contains "health names the new dataplane" "dataplane pid $dp_pid ready"

echo "# clean stops"
expect "shutdown method" 0 ctl shutdown
wait "$cp_pid"
rc=$?
[ "$rc" -eq 0 ] && ok "cp exited 0" || not_ok "cp exited $rc"
cp_pid=
[ -S "$rt/cp.sock" ] && not_ok "cp socket left" || ok "cp socket removed"
grep -q "stopped" "$work/cp2.log" && ok "cp logged its stop" || not_ok "cp stop not logged"
kill -TERM "$dp_pid"
wait "$dp_pid"
rc=$?
[ "$rc" -eq 0 ] && ok "dp exited 0 on SIGTERM" || { not_ok "dp exited $rc"; sed 's/^/#   /' "$work/dp3.log"; }
dp_pid=
[ -S "$rt/dp.sock" ] && not_ok "dp socket left" || ok "dp socket removed"
grep -q "shutting down" "$work/dp3.log" && ok "dp logged the signal" || not_ok "dp signal not logged"

echo "# a restarted control plane waiting for a dataplane stops on SIGTERM"
NOVACRON_CP_REATTACH=1 "$CP" --config "$cfg" >"$work/cp3.log" 2>&1 &
cp_pid=$!
in_log "$work/cp3.log" "waiting for the next dataplane" 10 && ok "it waits" || not_ok "it does not wait"
kill -TERM "$cp_pid"
wait "$cp_pid"
rc=$?
cp_pid=
[ "$rc" -eq 0 ] && ok "and exits 0 on SIGTERM" || not_ok "it exited $rc"

echo "# a control plane still booting (no dataplane to attach to) stops on SIGTERM at once"
"$CP" --config "$cfg" --set controlplane.attach_retries=30 >"$work/cp4.log" 2>&1 &
cp_pid=$!
in_log "$work/cp4.log" "booting" 10 && ok "it boots" || not_ok "it does not boot"
sleep 1
t0=$(date +%s.%N)
kill -TERM "$cp_pid"
wait "$cp_pid"
rc=$?
t1=$(date +%s.%N)
cp_pid=
[ "$rc" -eq 0 ] && ok "it exits 0" || { not_ok "it exited $rc"; sed 's/^/#   /' "$work/cp4.log"; }
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 4) }' &&
	ok "within $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s of the signal (< 4; 30 attach retries take ~30 s)" ||
	not_ok "it took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
grep -q "during the boot" "$work/cp4.log" && ok "it logged the stop during the boot" || not_ok "no stop logged"

echo "1..$checks"
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
