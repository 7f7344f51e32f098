#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench_amst: AMST's goodput against its baselines, in one run, side by side
# (docs/bench.md):
#   (a) memif, one worker core per side, IP MTU 9000: AMST with sealing off
#       against the raw port rate (bench_memif_raw: the same 9014-byte frames,
#       no protocol), and AMST with AES-256-GCM against OpenSSL's
#       AES-256-GCM alone on one core (bench_aead, same payload size). AMST
#       carries test streams (test:N, made and checked inside the dataplanes,
#       as bench_memif_raw makes its frames): the protocol's figure, the one
#       the goals judge. Beside it, the same through host connections (UNIX
#       sockets, tests/amst_streams.py at both ends), whose copies and
#       processes share the same two cores;
#   (b) the emulated WAN profiles wan1g and wan1g-lossy (tools/wan): AMST
#       against iperf3 TCP over the same namespaces and emulator, cubic x1,
#       BBR x1 and BBR x4.
# Writes a PNG of goodput over time (OUT_DIR/bench-amst.png), prints a table
# with the goals, then one line of JSON: {"bench": "amst", ...}.
# Run with tools/novacron bench amst [--out-dir DIR] [--seconds S] [--skip-wan]
# [--skip-memif] [--poll-mode adaptive|busy] (the dataplanes' poll mode,
# default adaptive as shipped; busy is a diagnostic). Needs root, hugepages,
# iperf3, gnuplot.
set -uo pipefail

B=${NC_BUILD:?run through tools/novacron bench amst}
S=${NC_SOURCE:?run through tools/novacron bench amst}
. "$S/tests/lib_appliance.sh"
DP=$B/dataplane/novacron-dp
CP=$B/controlplane/novacron-cp
CTL=$B/tools/novactl
RAW=$B/bench/bench_memif_raw
AEAD=$B/bench/bench_aead
STREAMS=$S/tests/amst_streams.py
PSK=bench-amst-psk-0123456789abcdef

out_dir=$B
secs=10       # measured seconds of every run
warm=2        # seconds left out at the start of every run (iperf3 -O)
skip_wan=
skip_memif=
poll_mode=adaptive
while [ $# -gt 0 ]; do
	case "$1" in
	--out-dir) out_dir=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--skip-wan) skip_wan=1; shift ;;
	--skip-memif) skip_memif=1; shift ;;
	--poll-mode) poll_mode=$2; shift 2 ;;
	*) echo "usage: bench_amst.sh [--out-dir DIR] [--seconds S] [--skip-wan] [--skip-memif] [--poll-mode adaptive|busy]" >&2; exit 2 ;;
	esac
done
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -ge 2 ] || { echo "bench_amst: --seconds must be an integer >= 2" >&2; exit 2; }
[ "$poll_mode" = adaptive ] || [ "$poll_mode" = busy ] || { echo "bench_amst: --poll-mode adaptive|busy" >&2; exit 2; }
mkdir -p "$out_dir" || exit 2
png=$(cd "$out_dir" && pwd)/bench-amst.png

work=$(mktemp -d /tmp/nc-bench-amst.XXXXXX)
wan=ncb$$
pids=()          # every process started here
prefixes=()      # EAL file prefixes used here
wan_up=
failures=()      # why a part failed
res=$work/results # "key value" lines, read by the report at the end

cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	[ -f "$work/iperf3.pid" ] && kill -TERM "$(cat "$work/iperf3.pid")" 2>/dev/null
	sleep 0.5
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -f "$work/iperf3.pid" ] && kill -KILL "$(cat "$work/iperf3.pid")" 2>/dev/null
	[ -n "$wan_up" ] && "$S/tools/wan" down --name "$wan" >/dev/null 2>&1
	# A dataplane that had to be killed leaves its hugepage files behind.
	for p in "${prefixes[@]}"; do rm -rf "/var/run/dpdk/$p" "/dev/hugepages/${p}map_"*; done
	[ -n "${BENCH_KEEP:-}" ] && echo "# kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "# $*" >&2; }
fail() { failures+=("$*"); say "FAILED: $*"; }
put() { echo "$1 $2" >>"$res"; }

# CPU seconds (utime + stime) of a process, threads included.
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# cpu_pct START_FILE PID... : percent of one core since the snapshot in START_FILE
cpu_snap() { local f=$1 p; shift; : >"$f"; for p in "$@"; do echo "$p $(cpu_of "$p") $(date +%s.%N)" >>"$f"; done; }
cpu_pct() {
	local f=$1 p c t
	while read -r p c t; do
		awk -v c0="$c" -v t0="$t" -v c1="$(cpu_of "$p")" -v t1="$(date +%s.%N)" \
			'BEGIN { printf "%.0f ", 100 * (c1 - c0) / (t1 - t0) }'
	done <"$f"
}

# config NAME PREFIX LCORES PORT IP MTU SEAL -> $work/NAME.yaml
config() {
	mkdir -p "$work/$1"
	prefixes+=("$2")
	cat >"$work/$1.yaml" <<EOF
runtime:
  dir: $work/$1
dataplane:
  lcores: "$3"
  file_prefix: $2
  poll_mode: $poll_mode
  ports:
    - "$4"
amst:
  ip: $5
  psk: $PSK
  mtu: $6
  seal: $7
  idle_timeout_ms: 5000
  session_memory_mb: 512
  max_streams: 4
controlplane:
  dp_timeout_ms: 3000
EOF
}




# worker_snap NODE: "loops busy_loops sleeps" of the node's workers (summed)
worker_snap() {
	ctl "$1" --dp --json status 2>/dev/null | python3 -c '
import json, sys
w = json.load(sys.stdin).get("workers", [])
print(sum(x.get("loops", 0) for x in w), sum(x.get("busy_loops", 0) for x in w), sum(x.get("sleeps", 0) for x in w))' 2>/dev/null
}

# worker_rates BEFORE AFTER SECONDS: "busy% sleeps/s" (busy%: loops that did work)
worker_rates() {
	awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { split(a, x, " "); split(b, y, " ")
		l = y[1] - x[1]; printf "%.1f %.0f", (l > 0 ? 100 * (y[2] - x[2]) / l : 0), (y[3] - x[3]) / s }'
}

# window PROGRESS FROM TO: Mbit/s received between those seconds (linear
# interpolation between the progress samples); prints nothing if too short.
window() {
	python3 - "$@" <<'PY'
import sys
pts = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
a, b = float(sys.argv[2]), float(sys.argv[3])
def at(t):
    prev = (0.0, 0.0)
    for p in pts:
        if p[0] >= t:
            f = (t - prev[0]) / (p[0] - prev[0]) if p[0] > prev[0] else 1
            return prev[1] + f * (p[1] - prev[1])
        prev = p
    return None
x, y = at(a), at(b)
if x is not None and y is not None:
    print(f"{(y - x) * 8 / (b - a) / 1e6:.1f}")
PY
}

# series PROGRESS DAT: per-interval Mbit/s, "t mbps" lines, for the plot, up
# to warm + secs (what follows is the drain of the buffers after the sender
# stopped: not part of the run)
series() {
	awk -v end="$((warm + secs))" 'NR == 1 { t0 = 0; b0 = 0 }
		$1 <= end + 0.01 { if ($1 > t0) printf "%.2f %.1f\n", $1, ($2 - b0) * 8 / ($1 - t0) / 1e6; t0 = $1; b0 = $2 }' "$1" >"$2"
}

# wan_snap FILE: wanem's counters now (rewritten by wanem every second)
wan_snap() { "$S/tools/wan" stats --name "$wan" >"$1" 2>/dev/null; }

# wan_drops BEFORE AFTER KEY: "KEY_wire_loss_pct" and "KEY_queue_drop_pct" of
# the A-to-B link between two snapshots (about +-1 s), into the results
wan_drops() {
	python3 - "$@" <<'PY' >>"$res"
import json, sys
try:
    a = json.load(open(sys.argv[1]))["links"][0]; b = json.load(open(sys.argv[2]))["links"][0]
except Exception:
    sys.exit(0)
if b["in_frames"] < a["in_frames"]:
    a = dict.fromkeys(a, 0)  # wanem restarted in between
n = max(1, b["in_frames"] - a["in_frames"])
print(f"{sys.argv[3]}_wire_loss_pct {100.0 * (b['loss_frames'] - a['loss_frames']) / n:.3f}")
print(f"{sys.argv[3]}_queue_drop_pct {100.0 * (b['queue_drop_frames'] - a['queue_drop_frames']) / n:.3f}")
PY
}

# measure NODE_SEND NODE_RECV SESSION TAG [PID...]: after warm s, for secs s,
# the CPU of both dataplanes (and PIDs) into $work/TAG.cpu, their workers'
# busy share and naps into $work/TAG.workers, then the sender's stats into
# $work/TAG.statsA.json.
measure() {
	local a=$1 b=$2 sess=$3 tag=$4 dpa dpb wa0 wb0 t0 t1
	shift 4
	dpa=$(eval echo "\$${a}_dp")
	dpb=$(eval echo "\$${b}_dp")
	sleep "$warm"
	cpu_snap "$work/$tag.cpu0" "$dpa" "$dpb" "$@"
	wa0=$(worker_snap "$a") wb0=$(worker_snap "$b") t0=$(date +%s.%N)
	sleep "$secs"
	cpu_pct "$work/$tag.cpu0" >"$work/$tag.cpu"
	t1=$(date +%s.%N)
	# Workers: share of loops that found work, and naps per second.
	echo "$(worker_rates "$wa0" "$(worker_snap "$a")" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")" \
		"$(worker_rates "$wb0" "$(worker_snap "$b")" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")" \
		>"$work/$tag.workers"
	ctl "$a" --json session stats "$sess" >"$work/$tag.statsA.json" 2>/dev/null
}

# sess_close NODE_SEND NODE_RECV SESSION: close both ends, and remove them
# once closed.
sess_close() {
	ctl "$1" session close "$3" >/dev/null 2>&1
	ctl "$2" session close "$3" >/dev/null 2>&1
	sleep 0.3
	ctl "$1" session close "$3" >/dev/null 2>&1
	ctl "$2" session close "$3" >/dev/null 2>&1
}

# amst_run NODE_SEND NODE_RECV SESSION PEER_OF_SEND PEER_OF_RECV STREAMS TAG [extra serve/send opts]
# Opens a session, sends for warm + secs + 1 s on STREAMS connections, measures
# the receiver's goodput over [warm, warm + secs]: sets amst_mbps (Mbit/s, or
# empty). Not in a subshell: the processes it starts stay in pids for cleanup.
# Leaves $work/TAG.progress, $work/TAG.cpu ("dpS dpR send serve [extra]":
# percent of a core over the window; extra: the pid in $amst_extra_pid).
amst_run() {
	local a=$1 b=$2 sess=$3 pa=$4 pb=$5 n=$6 tag=$7
	local dur=$((warm + secs + 1))
	amst_mbps=
	if ! ctl "$a" session open "$sess" send "$pb" "unix:$work/$tag.src.sock" >/dev/null ||
		! ctl "$b" session open "$sess" receive "$pa" "unix:$work/$tag.dst.sock" >/dev/null; then
		say "$tag: session.open failed"
		return 1
	fi
	python3 "$STREAMS" serve "unix:$work/$tag.dst.sock" --conns "$n" --no-hash --block 4194304 \
		--progress "$work/$tag.progress" --interval 0.5 --timeout 60 --out "$work/$tag.dst.json" &
	local srv=$!
	pids+=($srv)
	sleep 0.3
	python3 "$STREAMS" send "unix:$work/$tag.src.sock" --conns "$n" --no-hash --block 4194304 \
		--seconds "$dur" --timeout 60 --out "$work/$tag.src.json" &
	local snd=$!
	pids+=($snd)
	measure "$a" "$b" "$sess" "$tag" "$snd" "$srv" ${amst_extra_pid:-}
	wait "$snd"
	local rs=$?
	wait "$srv"
	local rr=$?
	ctl "$b" --json session stats "$sess" >"$work/$tag.statsB.json" 2>/dev/null
	sess_close "$a" "$b" "$sess"
	if [ $rs -ne 0 ] || [ $rr -ne 0 ]; then
		say "$tag: the host connections did not end cleanly (send $rs, serve $rr):" \
			"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"], json.load(open(sys.argv[2]))["error"])' \
				"$work/$tag.src.json" "$work/$tag.dst.json" 2>/dev/null)"
		return 1
	fi
	amst_mbps=$(window "$work/$tag.progress" "$warm" "$((warm + secs))")
	[ -n "$amst_mbps" ]
}

# amst_test_run NODE_SEND NODE_RECV SESSION PEER_OF_SEND PEER_OF_RECV STREAMS TAG
# As amst_run, with test streams: the sending dataplane writes the test
# pattern on STREAMS streams for as long as the session lasts, the receiving
# one checks every byte and drops it; a poller reads the receiver's delivered
# bytes every 0.5 s. Fails if a byte differed.
amst_test_run() {
	local a=$1 b=$2 sess=$3 pa=$4 pb=$5 n=$6 tag=$7
	amst_mbps=
	if ! ctl "$b" session open "$sess" receive "$pa" test: >/dev/null ||
		! ctl "$a" session open "$sess" send "$pb" "test:$n" >/dev/null; then
		say "$tag: session.open failed"
		return 1
	fi
	python3 - "$CTL" "$work/$b" "$sess" "$work/$tag.progress" "$((warm + secs + 1))" <<'PY' &
import json, subprocess, sys, time
ctl, rundir, sess, out, dur = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
t0 = time.monotonic()
with open(out, "w") as f:
    while True:
        t = time.monotonic() - t0
        try:
            s = json.loads(subprocess.run([ctl, "-r", rundir, "--json", "session", "stats", sess],
                                          capture_output=True, text=True, timeout=5).stdout)
            f.write(f"{t:.3f} {sum(x['from_peer'] for x in s['stream_list'])}\n")
            f.flush()
        except Exception:
            pass
        if t >= dur:
            break
        time.sleep(max(0.0, 0.5 - (time.monotonic() - t0 - t)))
PY
	local poll=$!
	pids+=($poll)
	measure "$a" "$b" "$sess" "$tag"
	wait "$poll"
	ctl "$b" --json session stats "$sess" >"$work/$tag.statsB.json" 2>/dev/null
	sess_close "$a" "$b" "$sess"
	local bad
	bad=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["host_errors"])' "$work/$tag.statsB.json" 2>/dev/null)
	if [ "${bad:-x}" != 0 ]; then
		say "$tag: the receiver found ${bad:-?} test stream(s) with bytes that differ"
		return 1
	fi
	# A session that failed or ended in the window: no figure from it.
	bad=$(python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(s["state"] if s["state"] != "established" or s["error"] else "")' \
		"$work/$tag.statsB.json" 2>/dev/null || echo "no stats")
	if [ -n "$bad" ]; then
		say "$tag: the receiving session was not running at the window's end: $bad $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["error"])' "$work/$tag.statsB.json" 2>/dev/null)"
		return 1
	fi
	amst_mbps=$(window "$work/$tag.progress" "$warm" "$((warm + secs))")
	[ -n "$amst_mbps" ]
}

# memif_runs test|host SEAL: AMST over the memif pair (appliances A and B up)
# with 1 and with 4 streams, test streams or host connections; records each
# run and, as the figure, the better one.
memif_runs() {
	local kind=$1 seal=$2 n tag mbps best= best_n= key prefix run
	if [ "$kind" = test ]; then
		prefix=memtest run=amst_test_run key=memif_amst_gbps
	else
		prefix=memif run=amst_run key=memif_amst_host_gbps
	fi
	[ "$seal" = true ] && key=${key/memif_amst/memif_amst_sealed}
	for n in 1 4; do
		tag=$prefix-$seal-$n
		"$run" A B "${kind:0:1}$n" 10.88.0.1 10.88.0.2 "$n" "$tag"
		mbps=$amst_mbps
		if [ -z "$mbps" ]; then
			fail "memif AMST $kind, seal=$seal, $n stream(s): no goodput"
			continue
		fi
		put "${tag}_gbps" "$(awk -v m="$mbps" 'BEGIN { printf "%.3f", m / 1000 }')"
		put "${tag}_cpu" "$(tr ' ' ',' <"$work/$tag.cpu" | sed 's/,$//')"
		put "${tag}_workers" "$(tr ' ' ',' <"$work/$tag.workers")"
		local py=
		if [ "$kind" = host ]; then
			# The sender's congestion state at the end of the window.
			put "${tag}_cc" "$(python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))
print("%d,%.0f,%.0f,%.0f" % (s["window_bytes"], s["pacing_mbps"], s["bottleneck_mbps"], s["srtt_ms"] * 1000))' \
				"$work/$tag.statsA.json" 2>/dev/null)"
			py=", sender.py $(awk '{print $3}' "$work/$tag.cpu"), receiver.py $(awk '{print $4}' "$work/$tag.cpu")"
		fi
		say "  $kind x$n: $(awk -v m="$mbps" 'BEGIN { printf "%.2f", m / 1000 }') Gbit/s;" \
			"CPU % of a core: dp A $(awk '{print $1}' "$work/$tag.cpu"), dp B $(awk '{print $2}' "$work/$tag.cpu")$py;" \
			"worker loops with work: A $(awk '{print $1}' "$work/$tag.workers")%, B $(awk '{print $3}' "$work/$tag.workers")%"
		if [ -z "$best" ] || awk -v a="$mbps" -v b="$best" 'BEGIN { exit !(a > b) }'; then
			best=$mbps best_n=$n
		fi
	done
	if [ -n "$best" ]; then
		put "$key" "$(awk -v m="$best" 'BEGIN { printf "%.3f", m / 1000 }')"
		put "${key%_gbps}_streams" "$best_n"
		series "$work/$prefix-$seal-$best_n.progress" "$work/plot-$prefix-$seal.dat"
	fi
}

# aead N: OpenSSL's AES-256-GCM alone on one core, 2 s, 8972-byte payloads
# (run twice, before and after the AMST runs: the machine is noisy, and the
# higher figure is the core's capability)
aead() {
	say "(a) memif: OpenSSL AES-256-GCM alone on one core ($1 of 2)"
	if "$AEAD" --size 8972 --seconds 2 >"$work/aead$1.out" 2>&1; then
		sed 's/^/#   /' "$work/aead$1.out" | grep -v '^#   {' >&2
		python3 - "$work/aead$1.out" "$1" >>"$res" <<'PY'
import json, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(f"aead{sys.argv[2]}_seal_gbps", j["seal_gbps"]); print(f"aead{sys.argv[2]}_open_gbps", j["open_gbps"])
PY
	else
		fail "bench_aead: $(tail -1 "$work/aead$1.out")"
	fi
}

# raw_run N: the raw port rate (bench_memif_raw), run N of 3. It runs before,
# between and after the AMST runs: on these VMs it swings up to 2x from one
# run to the next (31-83 Gbit/s within minutes), far more than AMST or AES
# alone do, and the highest run is kept as the port's capability (as aead
# keeps its higher run): one run next to AMST's would make the share luck.
raw_run() {
	local i=$1 rp=ncbraw$$r$1 rx tx rrx rtx
	say "(a) memif: the raw port rate, ${secs} s ($i of 3: alloc_bulk + memcpy of a 9014-byte frame, no protocol)"
	prefixes+=("${rp}rx" "${rp}tx")
	local eal=(--no-pci --no-telemetry --proc-type=primary --log-level=*:warning)
	rm -f "$work/raw.sock"
	"$RAW" -l 0 --file-prefix="${rp}rx" "${eal[@]}" \
		--vdev "net_memif0,role=server,socket=$work/raw.sock,socket-abstract=no,bsize=10240" \
		-- --role rx --seconds "$secs" --warmup 1 >"$work/raw$i-rx.out" 2>"$work/raw$i-rx.err" &
	rx=$!
	pids+=($rx)
	for _ in $(seq 200); do [ -S "$work/raw.sock" ] && break; sleep 0.05; done
	"$RAW" -l 1 --file-prefix="${rp}tx" "${eal[@]}" \
		--vdev "net_memif0,role=client,socket=$work/raw.sock,socket-abstract=no,bsize=10240" \
		-- --role tx --seconds "$((secs + 2))" >"$work/raw$i-tx.out" 2>"$work/raw$i-tx.err" &
	tx=$!
	pids+=($tx)
	# The receiver measures, prints, then waits for the sender to go: stop
	# the sender only then (neither polls while the other tears down).
	while kill -0 $rx 2>/dev/null && ! grep -q '^{' "$work/raw$i-rx.out"; do sleep 0.1; done
	kill -TERM $tx 2>/dev/null
	wait $tx
	rtx=$?
	wait $rx
	rrx=$?
	if [ $rrx -eq 0 ] && grep -q '"role": "rx"' "$work/raw$i-rx.out"; then
		python3 - "$work/raw$i-rx.out" "$i" >>"$res" <<'PY'
import json, sys
rx = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
i = sys.argv[2]
print(f"raw{i}_gbps", rx["gbps"]); print(f"raw{i}_payload_gbps", rx["payload_gbps"])
print(f"raw{i}_mpps", rx["mpps"]); print("memif_raw_fill", rx["fill"])
PY
		say "  rx: $(grep '^{' "$work/raw$i-rx.out")"
		say "  tx: $(grep '^{' "$work/raw$i-tx.out")"
	else
		fail "bench_memif_raw (run $i): rx $rrx tx $rtx: $(tail -2 "$work/raw$i-rx.err" "$work/raw$i-tx.err" | tr '\n' ' ')"
	fi
}

# raw_best: the highest raw run's figures under the memif_raw_* keys, and
# every run's rate in memif_raw_runs_gbps.
raw_best() {
	python3 - "$res" >>"$res.tmp" <<'PY'
import sys
kv = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition(" ")
    kv[k] = v
runs = [i for i in "123" if f"raw{i}_gbps" in kv]
if runs:
    best = max(runs, key=lambda i: float(kv[f"raw{i}_gbps"]))
    print("memif_raw_gbps", kv[f"raw{best}_gbps"])
    print("memif_raw_payload_gbps", kv[f"raw{best}_payload_gbps"])
    print("memif_raw_mpps", kv[f"raw{best}_mpps"])
    print("memif_raw_runs_gbps", ",".join(kv[f"raw{i}_gbps"] for i in runs))
PY
	cat "$res.tmp" >>"$res" && rm -f "$res.tmp"
}

# ---------------------------------------------------------------------------
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
[ "${free:-0}" -ge 512 ] || { echo "bench_amst: needs 512 free hugepages (have ${free:-0}): tools/novacron setup" >&2; exit 1; }
for x in "$DP" "$CP" "$CTL" "$RAW" "$AEAD"; do
	[ -x "$x" ] || { echo "bench_amst: $x is missing: tools/novacron build" >&2; exit 1; }
done
command -v gnuplot >/dev/null || say "gnuplot is missing (apt-get install gnuplot-nox): no plot"

put poll_mode "$poll_mode"
if [ -z "$skip_memif" ]; then
	aead 1

	raw_run 1

	for seal in false true; do
		if [ "$seal" = true ]; then raw_run 2; fi
		say "(a) memif: AMST, amst.seal: $seal, two dataplanes (lcores 0-1 and 0@1,1@0)"
		config A ncbA$$$seal "0-1" "memif:role=server,socket=$work/memif-$seal.sock,bsize=10240" 10.88.0.1/24 9000 $seal
		config B ncbB$$$seal "0@1,1@0" "memif:role=client,socket=$work/memif-$seal.sock,bsize=10240" 10.88.0.2/24 9000 $seal
		if ! appliance_start A || ! appliance_start B; then
			fail "memif seal=$seal: a dataplane did not come up"
			appliance_stop A B
			continue
		fi
		# Test streams: the protocol alone, as the raw rate is the port alone;
		# then the same through host connections.
		memif_runs test "$seal"
		memif_runs host "$seal"
		appliance_stop A B
		grep -h 'ERR\|CRIT' "$work"/A.dp.log "$work"/B.dp.log 2>/dev/null | head -3 | sed 's/^/#   /' >&2
		sleep 0.5
	done
	raw_run 3
	raw_best
	aead 2
	awk '$1 ~ /^aead[12]_seal_gbps$/ { if ($2 > m) m = $2; n++; l = l (l ? "," : "") $2 }
		$1 ~ /^aead[12]_open_gbps$/ { if ($2 > o) o = $2 }
		END { if (n) { print "aes_gcm_core_gbps", m; print "aes_gcm_open_gbps", o; print "aes_gcm_runs_gbps", l } }' \
		"$res" >>"$res.tmp" && cat "$res.tmp" >>"$res" && rm -f "$res.tmp"
fi

if [ -z "$skip_wan" ]; then
	put link_mbps 1000
	say "(b) WAN: tools/wan up wan1g --name $wan"
	if ! "$S/tools/wan" up wan1g --name "$wan" >"$work/wan.log" 2>&1; then
		fail "tools/wan up: $(tail -2 "$work/wan.log" | tr '\n' ' ')"
	else
		wan_up=1
		# A window of one BDP (1 Gbit/s x 50 ms = 6.25 MB) needs tcp_rmem's and
		# tcp_wmem's maximum at 2 BDP at least (half of rmem goes to overhead).
		for h in a b; do
			for k in tcp_rmem tcp_wmem; do
				max=$(ip netns exec "$wan-$h" sysctl -n "net.ipv4.$k" | awk '{print $3}')
				say "  $wan-$h net.ipv4.$k max $max"
				[ "$max" -ge 12500000 ] || fail "$wan-$h net.ipv4.$k max $max < 2 x BDP: TCP cannot fill the link"
			done
		done
		cc=$(ip netns exec "$wan-a" sysctl -n net.ipv4.tcp_congestion_control)
		say "  default congestion control in $wan-a: $cc"
		# The server reports JSON intervals of 0.5 s: the receiver's goodput
		# (--get-server-output brings them into the client's JSON).
		if ! ip netns exec "$wan-b" iperf3 -s -J -i 0.5 -B 10.77.0.2 -D --pidfile "$work/iperf3.pid" \
			--logfile "$work/iperf3-server.log" >/dev/null 2>&1; then
			fail "iperf3 server did not start"
		fi
		config WA ncbWA$$ "0-1" "af_packet:iface=a0" 10.77.0.11/24 1500 true
		config WB ncbWB$$ "0@1,1@0" "af_packet:iface=b0" 10.77.0.12/24 1500 true
		n_wan=${BENCH_AMST_WAN_STREAMS:-4}
		put wan_amst_streams "$n_wan"
		for profile in wan1g wan1g-lossy; do
			key=${profile//-/_}
			if [ $profile != wan1g ]; then
				"$S/tools/wan" set "$profile" --name "$wan" >>"$work/wan.log" 2>&1 ||
					{ fail "tools/wan set $profile"; continue; }
			fi
			sleep 1
			for run in "cubic 1" "bbr 1" "bbr 4"; do
				set -- $run
				tag=$profile-$1$2
				say "(b) $profile: iperf3 -C $1 -P $2, $secs s after $warm s"
				wan_snap "$work/$tag.wan0"
				if ip netns exec "$wan-a" iperf3 -c 10.77.0.2 -B 10.77.0.1 -C "$1" -P "$2" \
					-t "$secs" -O "$warm" -i 0.5 -J --get-server-output \
					>"$work/$tag.json" 2>"$work/$tag.err"; then
					sleep 1
					wan_snap "$work/$tag.wan1"
					wan_drops "$work/$tag.wan0" "$work/$tag.wan1" "${key}_$1$2"
					python3 - "$work/$tag.json" "$work/plot-$tag.dat" <<'PY' >"$work/$tag.res"
import json, sys
j = json.load(open(sys.argv[1]))
# The receiver's (server's) intervals if there, else the sender's.
srv = j.get("server_output_json") or {}
ivs = srv.get("intervals") or j["intervals"]
if ivs and ivs[-1]["sum"]["seconds"] <= 0.4:
    last = ivs[-1]  # the drain after the sender stopped: not plotted
    ivs = ivs[:-1]
with open(sys.argv[2], "w") as f:
    t = 0.0
    for iv in ivs:
        s = iv["sum"]
        t += s["seconds"]
        f.write(f"{t:.2f} {s['bits_per_second'] / 1e6:.1f}\n")
# Goodput: bytes received in the measured (not omitted) intervals, the short
# one at the end (the drain after the sender stopped) left out: the same
# window as AMST's. iperf3's own figure (over the run plus the drain) too.
meas = [iv["sum"] for iv in ivs if not iv["sum"].get("omitted") and iv["sum"]["seconds"] > 0.4]
rx = sum(s["bytes"] for s in meas) * 8 / max(1e-9, sum(s["seconds"] for s in meas)) / 1e6
own = j["end"]["sum_received"]["bits_per_second"] / 1e6
sent = j["end"]["sum_sent"]
retr = sent.get("retransmits", 0)
pct = 100.0 * retr * 1448 / sent["bytes"] if sent["bytes"] else 0
print(f"{rx:.1f} {pct:.3f} {own:.1f}")
PY
					read -r mbps rpct own <"$work/$tag.res"
					put "${key}_$1$2_mbps" "$mbps"
					put "${key}_$1$2_retrans_pct" "$rpct"
					say "  $mbps Mbit/s at the receiver (iperf3's own end figure: $own), retransmitted $rpct% (segments x 1448 / bytes sent)"
				else
					fail "$profile iperf3 $1 x$2: $(tail -2 "$work/$tag.err" "$work/$tag.json" | tr '\n' ' ' | cut -c1-200)"
				fi
				sleep 1
			done
			# The dataplanes come up only now: on af_packet they see a copy of
			# every frame on a0/b0, and polling them would take CPU from
			# iperf3 and wanem on this machine's two cores.
			if ! appliance_start WA "$wan-a" || ! appliance_start WB "$wan-b"; then
				fail "$profile: a dataplane did not come up"
				appliance_stop WA WB
				continue
			fi
			say "(b) $profile: AMST (sealed), $n_wan stream(s), $secs s after $warm s"
			tag=$profile-amst
			amst_extra_pid=$(cat "${NC_WAN_RUN:-/run/novacron-wan}/$wan/wanem.pid" 2>/dev/null)
			wan_snap "$work/$tag.wan0"
			amst_run WA WB "$key" 10.77.0.11 10.77.0.12 "$n_wan" "$tag"
			mbps=$amst_mbps
			amst_extra_pid=
			wan_snap "$work/$tag.wan1"
			wan_drops "$work/$tag.wan0" "$work/$tag.wan1" "${key}_amst"
			appliance_stop WA WB
			if [ -z "$mbps" ]; then
				fail "$profile AMST: no goodput"
				continue
			fi
			put "${key}_amst_mbps" "$mbps"
			python3 - "$work/$tag.statsA.json" <<'PY' >>"$res"
import json, sys
s = json.load(open(sys.argv[1]))
key = sys.argv[1].split("/")[-1].split("-amst")[0].replace("-", "_")
pct = 100.0 * s["retrans_bytes"] / max(1, s["stream_bytes_sent"])
print(f"{key}_amst_retrans_pct {pct:.3f}")
print(f"{key}_amst_srtt_ms {s['srtt_ms']:.1f}")
print(f"{key}_amst_bottleneck_mbps {s['bottleneck_mbps']:.0f}")
PY
			put "${key}_amst_cpu" "$(tr ' ' ',' <"$work/$tag.cpu" | sed 's/,$//')"
			put "${key}_amst_workers" "$(tr ' ' ',' <"$work/$tag.workers")"
			series "$work/$tag.progress" "$work/plot-$tag.dat"
			say "  $mbps Mbit/s; CPU % of a core: dp A $(awk '{print $1}' "$work/$tag.cpu"), dp B $(awk '{print $2}' "$work/$tag.cpu")," \
				"sender.py $(awk '{print $3}' "$work/$tag.cpu"), receiver.py $(awk '{print $4}' "$work/$tag.cpu"), wanem $(awk '{print $5}' "$work/$tag.cpu")"
		done
	fi
fi

# ---------------------------------------------------------------------------
plot=
if command -v gnuplot >/dev/null && ls "$work"/plot-*.dat >/dev/null 2>&1; then
	{
		echo "set terminal pngcairo size 1400,1000 font 'sans,10'"
		echo "set output '$png'"
		echo "set multiplot layout 3,1 title 'AMST goodput over time (tools/novacron bench amst, $(date -u +%Y-%m-%dT%H:%MZ))'"
		echo "set grid; set key outside right top; set xlabel 'seconds'"
		echo "set style line 1 lw 2.5 lc rgb '#d62728'"
		i=0
		mem=()
		for f in memtest-false memtest-true memif-false memif-true; do
			[ -f "$work/plot-$f.dat" ] || continue
			case $f in
			memtest-false) t="AMST, sealing off, test streams" ;;
			memtest-true) t="AMST, AES-256-GCM, test streams" ;;
			memif-false) t="AMST, sealing off, through UNIX sockets" ;;
			*) t="AMST, AES-256-GCM, through UNIX sockets" ;;
			esac
			mem+=("'$work/plot-$f.dat' using 1:(\$2/1000) with linespoints lw 2 title '$t'")
		done
		rawg=$(awk '$1 == "memif_raw_gbps" {print $2}' "$res")
		aesg=$(awk '$1 == "aes_gcm_core_gbps" {print $2}' "$res")
		[ -n "$rawg" ] && mem+=("$rawg with lines dt 2 lw 2 title 'raw port rate (no protocol)'")
		[ -n "$aesg" ] && mem+=("$aesg with lines dt 3 lw 2 title 'AES-256-GCM alone, one core'")
		if ((${#mem[@]})); then
			echo "set title 'memif, one worker core per side, MTU 9000 (log scale)'; set ylabel 'Gbit/s'"
			echo "set logscale y; set yrange [0.5:200]; set xrange [0:$((warm + secs))]"
			(IFS=,; echo "plot ${mem[*]}")
			echo "unset logscale y"
		fi
		for profile in wan1g wan1g-lossy; do
			l=()
			[ -f "$work/plot-$profile-amst.dat" ] && l+=("'$work/plot-$profile-amst.dat' with linespoints ls 1 title 'AMST'")
			for r in cubic1 bbr1 bbr4; do
				[ -f "$work/plot-$profile-$r.dat" ] &&
					l+=("'$work/plot-$profile-$r.dat' with linespoints lw 1.5 title 'iperf3 TCP ${r%?} x${r: -1}'")
			done
			((${#l[@]})) || continue
			l+=("1000 with lines dt 2 lc rgb 'black' title 'link rate'")
			echo "set title '$profile: 1 Gbit/s, 50 ms RTT, loss $([ $profile = wan1g ] && echo 0.1 || echo 1)% each way (first $warm s left out of the figures)'"
			echo "set ylabel 'Mbit/s'; set yrange [0:1300]; set xrange [0:$((warm + secs))]"
			echo "set arrow 1 from $warm, graph 0 to $warm, graph 1 nohead dt 3 lc rgb 'gray'"
			(IFS=,; echo "plot ${l[*]}")
			i=$((i + 1))
		done
		echo "unset multiplot"
	} >"$work/plot.gp"
	if gnuplot "$work/plot.gp" 2>"$work/plot.err"; then
		plot=$png
	else
		fail "gnuplot: $(head -3 "$work/plot.err" | tr '\n' ' ')"
	fi
fi
put plot "${plot:-none}"

printf '%s\n' "${failures[@]}" >"$work/failures"
python3 - "$res" "$work/failures" "$secs" "$warm" <<'PY'
import json, sys
r = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().partition(" ")
    try:
        r[k] = int(v) if v.isdigit() else float(v)
    except ValueError:
        r[k] = v
# Every run's rate: a list of numbers, however many runs there were.
for k in ("memif_raw_runs_gbps", "aes_gcm_runs_gbps"):
    if k in r:
        r[k] = [float(x) for x in str(r[k]).split(",") if x]
fails = [l.strip() for l in open(sys.argv[2]) if l.strip()]
secs, warm = int(sys.argv[3]), int(sys.argv[4])
g = r.get

def f(v, unit, d=2):
    return f"{v:.{d}f} {unit}" if isinstance(v, (int, float)) else "n/a"

def goal(ok):
    return "n/a" if ok is None else ("met" if ok else "MISSED")

def ratio(a, b):
    return 100.0 * a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None

print("amst: AMST goodput against its baselines, measured in this run")
print(f"  goodput = stream bytes delivered to the destination connections, over {secs} s "
      f"after {warm} s of start-up\n")
print("  (a) memif, one worker core per side, IP MTU 9000 (9014-byte frames)")
print(f"  {'what':46} {'figure':>14} {'share':>8}  {'goal':18} {'':6}")
raw, amst, sealed, aes = g("memif_raw_gbps"), g("memif_amst_gbps"), g("memif_amst_sealed_gbps"), g("aes_gcm_core_gbps")
p1, p2 = ratio(amst, raw), ratio(sealed, aes)
print(f"  {'raw port rate, frames (' + str(g('memif_raw_fill', '?')) + ')':46} {f(raw, 'Gbit/s'):>14}")
print(f"  {'  its runs, the best kept (Gbit/s)':46} {' / '.join(f'{x:g}' for x in g('memif_raw_runs_gbps', [])) or 'n/a':>14}")
print(f"  {'  of which UDP payload':46} {f(g('memif_raw_payload_gbps'), 'Gbit/s'):>14}")
hraw, hsealed = g("memif_amst_host_gbps"), g("memif_amst_sealed_host_gbps")
print(f"  {'AMST, sealing off, test streams (' + str(g('memif_amst_streams', '?')) + ')':46} {f(amst, 'Gbit/s'):>14} "
      f"{(f'{p1:.0f}%' if p1 is not None else 'n/a'):>8}  {'>= 50% of raw':18} {goal(None if p1 is None else p1 >= 50)}")
h1 = ratio(hraw, raw)
print(f"  {'  through UNIX sockets (' + str(g('memif_amst_host_streams', '?')) + ')':46} {f(hraw, 'Gbit/s'):>14} "
      f"{(f'{h1:.0f}%' if h1 is not None else 'n/a'):>8}  {'(host I/O: info)':18}")
print(f"  {'AES-256-GCM alone (OpenSSL, one core, seal)':46} {f(aes, 'Gbit/s'):>14}")
print(f"  {'AMST, AES-256-GCM, test streams (' + str(g('memif_amst_sealed_streams', '?')) + ')':46} {f(sealed, 'Gbit/s'):>14} "
      f"{(f'{p2:.0f}%' if p2 is not None else 'n/a'):>8}  {'>= 70% of AES-GCM':18} {goal(None if p2 is None else p2 >= 70)}")
h2 = ratio(hsealed, aes)
print(f"  {'  through UNIX sockets (' + str(g('memif_amst_sealed_host_streams', '?')) + ')':46} {f(hsealed, 'Gbit/s'):>14} "
      f"{(f'{h2:.0f}%' if h2 is not None else 'n/a'):>8}  {'(host I/O: info)':18}")
# Per run: test streams (two dataplanes), then UNIX sockets (and the two Python ends).
for key, what, procs in (("memtest", "test streams", ("dp A", "dp B")),
                         ("memif", "UNIX sockets", ("dp A", "dp B", "sender.py", "receiver.py"))):
    for seal in ("false", "true"):
        for n in (1, 4):
            v = g(f"{key}-{seal}-{n}_gbps")
            if v is None:
                continue
            cpu = str(g(f"{key}-{seal}-{n}_cpu", "")).split(",") + ["?"] * len(procs)
            wk = str(g(f"{key}-{seal}-{n}_workers", "")).split(",") + ["?"] * 4
            use = ", ".join(f"{p} {c}" for p, c in zip(procs, cpu))
            print(f"    seal {seal:5} x{n}, {what}: {v:6.2f} Gbit/s   CPU % of a core: {use}; "
                  f"worker loops with work: A {wk[0]}%, B {wk[2]}%")
            cc = str(g(f"{key}-{seal}-{n}_cc", "")).split(",")
            if len(cc) == 4:
                print(f"    {'':19} sender's window {cc[0]} B, pacing {cc[1]} Mbit/s, "
                      f"bottleneck estimate {cc[2]} Mbit/s, srtt {cc[3]} us")

print(f"\n  (b) emulated WAN (tools/wan, wanem), 1 Gbit/s, 50 ms RTT, MTU 1500; Mbit/s; AMST sealed, "
      f"{g('wan_amst_streams', '?')} stream(s), one session")
print(f"  {'profile':15} {'AMST':>8} {'cubic x1':>9} {'bbr x1':>8} {'bbr x4':>8}  {'goal':30} {'':6}")
for prof, key, pct in (("wan1g", "wan1g", 90), ("wan1g-lossy", "wan1g_lossy", 85)):
    a = g(f"{key}_amst_mbps")
    vals = [a, g(f"{key}_cubic1_mbps"), g(f"{key}_bbr1_mbps"), g(f"{key}_bbr4_mbps")]
    b4 = vals[3]
    ok = None
    # Both halves must be measured: a missing BBR x4 run is no verdict.
    if isinstance(a, (int, float)) and isinstance(b4, (int, float)):
        ok = a >= pct * 10 and a >= b4
    cells = " ".join(f"{(f'{v:.0f}' if isinstance(v, (int, float)) else 'n/a'):>{w}}"
                     for v, w in zip(vals, (8, 9, 8, 8)))
    print(f"  {prof:15} {cells}  {'>= ' + str(pct * 10) + ' and >= bbr x4':30} {goal(ok)}")
    rt = [g(f"{key}_amst_retrans_pct"), g(f"{key}_cubic1_retrans_pct"), g(f"{key}_bbr1_retrans_pct"),
          g(f"{key}_bbr4_retrans_pct")]
    cells = " ".join(f"{(f'{v:.2f}' if isinstance(v, (int, float)) else 'n/a'):>{w}}"
                     for v, w in zip(rt, (8, 9, 8, 8)))
    print(f"  {'  resent %':15} {cells}")
    for what, suffix, d in (("wire loss %", "wire_loss_pct", 2), ("queue drop %", "queue_drop_pct", 2)):
        vs = [g(f"{key}_{x}_{suffix}") for x in ("amst", "cubic1", "bbr1", "bbr4")]
        cells = " ".join(f"{(f'{v:.{d}f}' if isinstance(v, (int, float)) else 'n/a'):>{w}}"
                         for v, w in zip(vs, (8, 9, 8, 8)))
        print(f"  {'  ' + what:15} {cells}")
    cpu = str(g(f"{key}_amst_cpu", "")).split(",")
    if len(cpu) >= 4:
        wk = str(g(f"{key}_amst_workers", "")).split(",") + ["?"] * 4
        print(f"  {'':15} AMST run, CPU % of a core: dp A {cpu[0]}, dp B {cpu[1]}, sender.py {cpu[2]}, "
              f"receiver.py {cpu[3]}, wanem {cpu[4] if len(cpu) > 4 else '?'}; "
              f"worker loops with work: A {wk[0]}%, B {wk[2]}%")
print(f"\n  plot: {g('plot', 'none')}")
for x in fails:
    print(f"  FAILED: {x}")

keys = ["memif_amst_gbps", "memif_raw_gbps", "memif_amst_sealed_gbps", "aes_gcm_core_gbps",
        "link_mbps", "wan1g_amst_mbps", "wan1g_cubic1_mbps", "wan1g_bbr1_mbps", "wan1g_bbr4_mbps",
        "wan1g_lossy_amst_mbps", "wan1g_lossy_cubic1_mbps", "wan1g_lossy_bbr1_mbps",
        "wan1g_lossy_bbr4_mbps"]
j = {"bench": "amst"}
for k in keys:
    j[k] = g(k)
extra = ["memif_amst_streams", "memif_amst_sealed_streams", "memif_amst_host_gbps",
         "memif_amst_sealed_host_gbps", "memif_amst_host_streams", "memif_amst_sealed_host_streams",
         "memif_raw_payload_gbps", "memif_raw_mpps",
         "memif_raw_fill", "memif_raw_runs_gbps", "aes_gcm_open_gbps", "aes_gcm_runs_gbps", "wan_amst_streams", "poll_mode"]
for k in extra:
    if k in r:
        j[k] = r[k]
for k in sorted(r):
    if k.endswith(("retrans_pct", "_srtt_ms", "bottleneck_mbps", "wire_loss_pct", "queue_drop_pct")):
        j[k] = r[k]
for n in (1, 4):
    for seal, name in (("false", "memif_amst"), ("true", "memif_amst_sealed")):
        if f"memtest-{seal}-{n}_gbps" in r:
            j[f"{name}_x{n}_gbps"] = r[f"memtest-{seal}-{n}_gbps"]
        if f"memif-{seal}-{n}_gbps" in r:
            j[f"{name}_host_x{n}_gbps"] = r[f"memif-{seal}-{n}_gbps"]
j["seconds"], j["warmup_seconds"] = secs, warm
j["plot"] = g("plot") if g("plot") != "none" else None
j["failures"] = fails
print()
print(json.dumps(j))
PY
rc=$?
[ ${#failures[@]} -eq 0 ] && [ $rc -eq 0 ]
