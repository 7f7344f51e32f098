#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# integration_migrate: live migration of a real QEMU (7.2, TCG) through two
# appliances, driven by `novactl migrate` on the source's control plane.
# tools/wan (lan10g) joins host A (MIG_WAN-a) and host B (MIG_WAN-b); each
# has a dataplane on an af_packet port and a control plane; the control
# planes know each other as host-a and host-b over the peer link. The guests
# boot no kernel: their RAM is filled by -device loader with random, text and
# repeated-page data at several addresses (RAM 256 MiB - 8 KiB: QEMU 7.2's
# TCG loses dirty pages with sizes that are multiples of 256 KiB).
#   1. plain precopy and multifd x4: novactl succeeds, stream digests are
#      equal at both appliances, the paused destination's RAM (pmemsave)
#      equals the source's;
#   2. an unknown host, a TCG guest of 256 MiB (QEMU 7.2 would lose its
#      dirty pages: controlplane.tcg_guard), a second migration of a running
#      one, a destination with nobody listening and one that refuses the
#      connection are clear errors, and the source VM keeps running;
#   3. the destination's control plane, then (4.) its dataplane, then (5.)
#      the source's dataplane is killed mid-migration (rate-capped): novactl
#      fails, says why, and the source VM keeps running.
set -uo pipefail

B=${NC_BUILD:?}
S=${NC_SOURCE:?}
DP=$B/dataplane/novacron-dp
CP=$B/controlplane/novacron-cp
CTL=$B/tools/novactl
QMP="python3 $S/tests/qmp_cmd.py"
. "$S/tests/lib_appliance.sh"

wan=${MIG_WAN:-mig}
work=$(mktemp -d /tmp/nc-mig.XXXXXX)
pids=()
qemus=()
failures=0
checks=0
PSK=integration-test-psk-0123456789
PEER_PSK=peer-link-test-key-0123456789
RAM_K=262136

cleanup() {
	for p in "${qemus[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	"$S/tools/wan" down --name "$wan" >/dev/null 2>&1
	[ -n "${MIG_KEEP:-}" ] && echo "# kept $work" || rm -rf "$work"
	rm -rf "/var/run/dpdk/${wan}A$$" "/var/run/dpdk/${wan}B$$"
	# a dataplane killed by a test leaves its hugepage files behind
	rm -f "/dev/hugepages/${wan}A$$"map_* "/dev/hugepages/${wan}B$$"map_*
}
trap cleanup EXIT

ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

# config NAME PREFIX LCORES IFACE AMST_IP HOST PEER_LISTEN PEER
config() {
	mkdir -p "$work/$1"
	cat >"$work/$1.yaml" <<EOF
runtime:
  dir: $work/$1
dataplane:
  lcores: "$3"
  file_prefix: $2
  memory_mb: 256
  ports:
    - "af_packet:iface=$4"
amst:
  ip: $5
  psk: $PSK
  mtu: 1500
  idle_timeout_ms: 2000
  session_memory_mb: 64
controlplane:
  dp_timeout_ms: 3000
  host_name: $6
  peer_listen: "$7"
  peers:
    - "$8"
  peer_psk: $PEER_PSK
  peer_timeout_ms: 3000
  peer_dests:
    - $work
EOF
}

# The guest's memory image: random, text and repeated pages at several places.
python3 - "$work" <<'PY'
import os, random, sys
w = sys.argv[1]
rnd = random.Random(7)
words = b"migration stream page dirty appliance novacron qemu guest memory ".split()
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rnd.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])
page = bytes(rnd.getrandbits(8) for _ in range(4096))
blobs = {"rand1": os.urandom(2 << 20), "text1": text(2 << 20), "rep": page * 256,
         "rand2": os.urandom(1 << 20), "text2": text(1 << 20)}
for k, v in blobs.items():
    open(f"{w}/{k}.bin", "wb").write(v)
PY
loader() {
	echo "-device loader,file=$work/rand1.bin,addr=0x1000000,force-raw=on" \
		"-device loader,file=$work/text1.bin,addr=0x2000000,force-raw=on" \
		"-device loader,file=$work/rep.bin,addr=0x4000000,force-raw=on" \
		"-device loader,file=$work/rand2.bin,addr=0xc000000,force-raw=on" \
		"-device loader,file=$work/text2.bin,addr=0xf000000,force-raw=on"
}

# qemu_start TAG NETNS [EXTRA...]: QEMU with two QMP sockets, TAG.qmp for the
# appliance and TAG.t.qmp for this script; sets qemu_pid.
qemu_start() {
	local tag=$1 ns=$2
	shift 2
	# shellcheck disable=SC2046
	ip netns exec "$ns" qemu-system-x86_64 -machine pc -accel tcg -cpu max -m "${RAM_K}k" \
		-nodefaults -display none -vga none -no-user-config \
		-qmp "unix:$work/$tag.qmp,server=on,wait=off" \
		-qmp "unix:$work/$tag.t.qmp,server=on,wait=off" \
		$(loader) "$@" >"$work/$tag.qemu.log" 2>&1 &
	qemu_pid=$!
	qemus+=("$qemu_pid")
	for _ in $(seq 100); do
		[ -S "$work/$tag.t.qmp" ] && [ -S "$work/$tag.qmp" ] && return 0
		sleep 0.05
	done
	echo "# QEMU $tag did not start:" >&2
	sed 's/^/#   /' "$work/$tag.qemu.log" >&2
	return 1
}

# wait_sock PATH: up to 5 s for a destination QEMU's incoming socket.
wait_sock() {
	for _ in $(seq 100); do
		[ -S "$1" ] && return 0
		sleep 0.05
	done
	echo "# no socket $1" >&2
	return 1
}

vm_status() { $QMP "$work/$1.t.qmp" query-status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null; }

# ram_equal SRC DST: pmemsave both (below the VGA hole, and from 1 MiB to the
# end of RAM) and compare page by page.
ram_equal() {
	local t end=$((RAM_K * 1024))
	for t in "$1" "$2"; do
		$QMP "$work/$t.t.qmp" pmemsave "{\"val\": 0, \"size\": 655360, \"filename\": \"$work/$t.low\"}" \
			pmemsave "{\"val\": 1048576, \"size\": $((end - 1048576)), \"filename\": \"$work/$t.high\"}" >/dev/null ||
			return 1
	done
	python3 - "$work/$1" "$work/$2" <<'PY'
import sys
bad = 0
for part in ("low", "high"):
    a = open(f"{sys.argv[1]}.{part}", "rb").read()
    b = open(f"{sys.argv[2]}.{part}", "rb").read()
    if len(a) != len(b):
        print(f"# {part}: sizes differ {len(a)} {len(b)}"); bad += 1; continue
    diff = [i for i in range(0, len(a), 4096) if a[i:i + 4096] != b[i:i + 4096]]
    if diff:
        print(f"# {part}: {len(diff)} pages differ, first at {diff[0]:#x}"); bad += 1
    nz = sum(1 for i in range(0, len(a), 4096) if a[i:i + 4096].count(0) != 4096)
    print(f"#   {part}: {len(a) // 4096} pages equal, {nz} not zero")
sys.exit(1 if bad else 0)
PY
}

mig_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get(sys.argv[1]))' "$1"; }

free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
if [ "${free:-0}" -lt 256 ]; then
	echo "Bail out! needs 256 free hugepages (have ${free:-0}): run tools/novacron setup"
	exit 1
fi
command -v qemu-system-x86_64 >/dev/null || { echo "Bail out! needs qemu-system-x86"; exit 1; }

"$S/tools/wan" up lan10g --name "$wan" >/dev/null || { echo "Bail out! tools/wan up failed"; exit 1; }
config A "${wan}A$$" "0-1" a0 10.77.0.11/24 host-a 10.77.0.1:7480 "host-b=10.77.0.2:7480"
config B "${wan}B$$" "0@1,1@0" b0 10.77.0.12/24 host-b 10.77.0.2:7480 "host-a=10.77.0.1:7480"
appliance_start A "$wan-a" && appliance_start B "$wan-b" || exit 1
check "peer link: both control planes healthy" "ctl A health >/dev/null && ctl B health >/dev/null"

echo "# 1. migrations through the appliances"
# run_migration N CHANNELS: a fresh source and destination, migrate, check.
run_migration() {
	local n=$1 ch=$2 extra=()
	qemu_start "src$n" "$wan-a" || return 1
	qemu_start "dst$n" "$wan-b" -incoming "unix:$work/in$n.sock" -S && wait_sock "$work/in$n.sock" || return 1
	if [ "$ch" -gt 0 ]; then
		$QMP "$work/dst$n.t.qmp" migrate-set-capabilities '{"capabilities": [{"capability": "multifd", "state": true}]}' \
			migrate-set-parameters "{\"multifd-channels\": $ch}" >/dev/null
		extra=(--channels "$ch")
	fi
	local t0 rc
	t0=$(date +%s.%N)
	if [ "$ch" -eq 0 ]; then
		# On a terminal (script(1) makes one): the live progress bar.
		script -qec "$CTL -r $work/A migrate $work/src$n.qmp --to host-b --dest unix:$work/in$n.sock --rate 20" \
			/dev/null </dev/null >"$work/m$n.out" 2>&1
		rc=$?
		check "on a terminal, novactl draws a progress bar" \
			"grep -q \$'\\r\\[#' $work/m$n.out && grep -q 'ETA' $work/m$n.out"
		tr '\r' '\n' <"$work/m$n.out" | grep -v '^$' | tail -3 | sed 's/^/#   /'
	else
		ctl A migrate "$work/src$n.qmp" --to host-b --dest "unix:$work/in$n.sock" "${extra[@]}" >"$work/m$n.out" 2>&1
		rc=$?
		sed 's/^/#   /' "$work/m$n.out"
	fi
	echo "#   $(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')") s end to end"
	local what="plain"
	[ "$ch" -gt 0 ] && what="multifd x$ch"
	check "$what: novactl migrate exits 0" "[ $rc -eq 0 ]"
	ctl A --json migrate status "$work/src$n.qmp" >"$work/m$n.json"
	check "$what: state completed, digest_ok, $((ch + 1)) streams with equal digests" \
		"python3 -c 'import json; d=json.load(open(\"$work/m$n.json\")); assert d[\"state\"] == \"completed\" and d[\"digest_ok\"] is True and len(d[\"streams\"]) == $((ch + 1)) and all(s[\"equal\"] for s in d[\"streams\"]), d'"
	check "$what: downtime and total time reported" \
		"python3 -c 'import json; d=json.load(open(\"$work/m$n.json\")); assert d[\"total_ms\"] > 0 and d[\"downtime_ms\"] is not None and d[\"wire_bytes\"] > 0, d'"
	check "$what: the destination is paused with the source's RAM" \
		"[ \"\$(vm_status dst$n)\" = paused ] && ram_equal src$n dst$n"
	# Capped at 20 Mbit/s, the plain one lasts several of the control plane's
	# 200 ms polls; multifd here may be over before the first (then the
	# buffers stay open: there was nothing to hold back).
	[ "$ch" -eq 0 ] && check "$what: open buffers for the bulk, closed before switchover (the unsent limit was set)" \
		"grep -q 'left in pass .*: unsent limit 20 ms' $work/A.cp.log"
	[ "$ch" -eq 0 ] && check "$what: the receiver's windows, open for the bulk, were set to follow its reader over the peer link" \
		"grep -q \"migration .*: the receiver's windows follow its reader\" $work/A.cp.log"
	check "$what: both sessions are gone" \
		"! ctl A --json session list | grep -q mig- && ! ctl B --json session list | grep -q mig-"
	# When it frees a session, each dataplane logs what HDE made of its streams.
	local id mb
	id=$(mig_field id <"$work/m$n.json")
	mb=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["stream_bytes"] / 1e6))' "$work/m$n.json")
	check "$what: both dataplanes logged HDE's summary of the session ($mb MB of stream)" \
		"grep -q 'session $id: HDE coded $mb MB of stream as .* frames: .*[0-9]' $work/A.dp.log && grep -q 'session $id: HDE decoded $mb MB of stream as' $work/B.dp.log"
}
run_migration 1 0
run_migration 2 4
kill -KILL "${qemus[@]}" 2>/dev/null
wait "${qemus[@]}" 2>/dev/null
qemus=()

echo "# 2. bad requests are clear errors; the source keeps running"
qemu_start src3 "$wan-a" || exit 1
out=$(ctl A migrate "$work/src3.qmp" --to host-zz --dest "unix:$work/in3.sock" 2>&1)
rc=$?
echo "#   $out"
check "unknown host: exit 1, says so" "[ $rc -eq 1 ] && grep -q 'unknown host' <<<\"\$out\""
# A guest of 256 MiB, a multiple of 256 KiB: QEMU 7.2 under TCG would lose
# pages it dirties (controlplane.tcg_guard), so it is refused, saying why.
RAM_K=262144 qemu_start src256 "$wan-a" || exit 1
out=$(ctl A migrate "$work/src256.qmp" --to host-b --dest "unix:$work/in3.sock" 2>&1)
rc=$?
echo "#   $out"
check "a TCG guest of 256 MiB: exit 1, says why" \
	"[ $rc -eq 1 ] && grep -q 'is not migrated: it runs under TCG on QEMU 7\.' <<<\"\$out\" &&
	grep -q 'with 262144 KiB of RAM, a multiple of 256 KiB' <<<\"\$out\""
check "a TCG guest of 256 MiB: still runs" "[ \"\$(vm_status src256)\" = running ]"
kill "$qemu_pid" 2>/dev/null
wait "$qemu_pid" 2>/dev/null
out=$(ctl A migrate "$work/src3.qmp" --to host-b --dest "unix:$work/nobody.sock" 2>&1)
rc=$?
sed 's/^/#   /' <<<"$out"
check "nobody listening at the destination: exit 1, says so" \
	"[ $rc -eq 1 ] && grep -q 'nobody.sock' <<<\"\$out\" && grep -qi 'no such file' <<<\"\$out\""
# A socket file nobody accepts on: the destination appliance's connect is refused.
ip netns exec "$wan-b" python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$work/refuse.sock"
out=$(ctl A migrate "$work/src3.qmp" --to host-b --dest "unix:$work/refuse.sock" 2>&1)
rc=$?
sed 's/^/#   /' <<<"$out"
check "the destination refuses the connection: exit 1, says so" \
	"[ $rc -eq 1 ] && grep -q 'refused' <<<\"\$out\""
check "the source VM still runs" "[ \"\$(vm_status src3)\" = running ]"
# Anyone who reaches the peer port may open connections and say nothing:
# they may not take the slots a real peer needs (there are 16). From an
# address that is no configured peer's (host-a's is 10.77.0.1).
ip -n "$wan-a" addr add 10.77.0.99/24 dev a0
ip netns exec "$wan-a" python3 -c '
import socket, sys, time
held = [socket.create_connection(("10.77.0.2", 7480), source_address=("10.77.0.99", 0))
        for _ in range(20)]
print("held", flush=True)
time.sleep(60)' >"$work/silent.out" 2>&1 &
silent=$! # (tools/wan down ends it with the namespace's other processes)
for _ in $(seq 100); do grep -q held "$work/silent.out" && break; sleep 0.1; done
check "20 silent connections wait at the destination's peer port" "grep -q held $work/silent.out"
# What a peer may ask is the destination's to say (controlplane.peer_dests),
# asked here while 20 silent connections wait at the destination's port.
out=$(ctl A migrate "$work/src3.qmp" --to host-b --dest "unix:$work/B/cp.sock" 2>&1)
rc=$?
echo "#   $out"
check "a destination that is the destination host's control socket: exit 1, refused there" \
	"[ $rc -eq 1 ] && grep -q 'runtime directory' <<<\"\$out\""
kill "$silent" 2>/dev/null
wait "$silent" 2>/dev/null
ip -n "$wan-a" addr del 10.77.0.99/24 dev a0
ln -sf "$work/B/cp.sock" "$work/link.sock"
out=$(ctl A migrate "$work/src3.qmp" --to host-b --dest "unix:$work/link.sock" 2>&1)
rc=$?
echo "#   $out"
check "or a symbolic link to it: exit 1, refused" "[ $rc -eq 1 ] && grep -q 'a symbolic link' <<<\"\$out\""
out=$(ctl A migrate "$work/src3.qmp" --to host-b --dest "unix:/run/elsewhere.sock" 2>&1)
rc=$?
echo "#   $out"
check "a destination outside controlplane.peer_dests: exit 1, says so" \
	"[ $rc -eq 1 ] && grep -q 'controlplane.peer_dests' <<<\"\$out\""
check "the destination logged the refusal" "grep -q 'peer host-a: peer.check_dest refused' $work/B.cp.log"
out=$(ctl A migrate "$work/none.qmp" --to host-b --dest "unix:$work/in3.sock" 2>&1)
rc=$?
echo "#   $out"
check "no QMP socket at the VM's path: exit 1, says so" \
	"[ $rc -eq 1 ] && grep -q 'no QMP socket at $work/none.qmp' <<<\"\$out\""
# A monitor that accepts and never says a word: the VM is opened on the
# migration's thread, so the control socket answers meanwhile.
python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8); time.sleep(60)' "$work/hung.qmp" &
hung=$!
pids+=("$hung")
for _ in $(seq 50); do [ -S "$work/hung.qmp" ] && break; sleep 0.1; done
ctl A migrate "$work/hung.qmp" --to host-b --dest "unix:$work/in3.sock" --no-wait >/dev/null
rc=$?
ctl A --json migrate status "$work/hung.qmp" >"$work/hung1.json"
check "a VM whose monitor never answers: migrate.start answers (exit $rc)" "[ $rc -eq 0 ]"
check "and so does migrate.status, while the VM is being opened" \
	"grep -q '\"phase\": \"connecting to the VM\"' $work/hung1.json"
hung_failed() { # within 10 s, the migration fails saying why
	for _ in $(seq 100); do
		ctl A --json migrate status "$work/hung.qmp" >"$work/hung2.json"
		grep -q '"state": "failed"' "$work/hung2.json" && grep -q 'QMP greeting' "$work/hung2.json" && return 0
		sleep 0.1
	done
	return 1
}
check "then it fails, saying the monitor did not greet" hung_failed
kill "$hung" 2>/dev/null
wait "$hung" 2>/dev/null
qemu_start dst3 "$wan-b" -incoming "unix:$work/in3.sock" -S && wait_sock "$work/in3.sock" || exit 1
ctl A migrate "$work/src3.qmp" --to host-b --dest "unix:$work/in3.sock" --rate 8 --codec none --no-wait >/dev/null
out=$(ctl A migrate "$work/src3.qmp" --to host-b --dest "unix:$work/in3.sock" 2>&1)
rc=$?
echo "#   $out"
check "a second migration of the same VM: exit 1, says so" \
	"[ $rc -eq 1 ] && grep -q 'already migrating' <<<\"\$out\""
ln -sf "$work/src3.qmp" "$work/src3-link.qmp"
out=$(ctl A migrate "$work/src3-link.qmp" --to host-b --dest "unix:$work/in3.sock" 2>&1)
rc=$?
echo "#   $out"
# Known by its record (not only by QEMU's own state, which says "(status ...)").
check "the same VM by another path (a symlink to its QMP socket): exit 1, says so" \
	"[ $rc -eq 1 ] && grep -q 'already migrating (mig-' <<<\"\$out\""
sleep 1
check "migrate cancel stops the running one" "ctl A migrate cancel '$work/src3.qmp' >/dev/null"
for _ in $(seq 100); do
	st=$(ctl A --json migrate status "$work/src3.qmp" | mig_field state)
	[ "$st" = cancelled ] || [ "$st" = failed ] && break
	sleep 0.1
done
check "it ends cancelled and the source VM runs" "[ \"$st\" = cancelled ] && [ \"\$(vm_status src3)\" = running ]"
check "migrate list shows them all" "[ \$(ctl A --json migrate list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"migrations\"]))') -ge 5 ]"
kill -KILL "${qemus[@]}" 2>/dev/null
wait "${qemus[@]}" 2>/dev/null
qemus=()

# start_slow TAG: a fresh source and destination and a rate-capped migration
# in the background (pid in mig); returns once bytes are on the wire.
start_slow() {
	local t=$1 w
	qemu_start "src$t" "$wan-a" && qemu_start "dst$t" "$wan-b" -incoming "unix:$work/in$t.sock" -S &&
		wait_sock "$work/in$t.sock" || return 1
	# codec none: HDE would shrink the stream ~4x and the migration would end
	# before the failure is injected.
	ctl A migrate "$work/src$t.qmp" --to host-b --dest "unix:$work/in$t.sock" --rate 8 --codec none >"$work/m$t.out" 2>&1 &
	mig=$!
	for _ in $(seq 100); do
		ctl A --json migrate status "$work/src$t.qmp" >"$work/m$t.json" 2>/dev/null
		w=$(mig_field wire_bytes <"$work/m$t.json")
		[ "${w:-0}" != None ] && [ "${w:-0}" -gt 1000000 ] && break
		grep -q '"state": "\(failed\|completed\)"' "$work/m$t.json" && break
		sleep 0.1
	done
	echo "#   $w bytes on the wire"
}

echo "# 3. the destination's control plane dies mid-migration"
start_slow 5 || exit 1
kill -KILL "$B_cp"
wait "$mig"
rc=$?
sed 's/^/#   /' "$work/m5.out"
check "novactl migrate fails (exit 1)" "[ $rc -eq 1 ]"
check "and says why (the destination's control plane)" "grep -q 'control plane' $work/m5.out"
check "the source VM still runs" "[ \"\$(vm_status src5)\" = running ]"
kill -KILL "${qemus[@]}" 2>/dev/null
wait "${qemus[@]}" 2>/dev/null
qemus=()
ip netns exec "$wan-b" "$CP" --config "$work/B.yaml" >>"$work/B.cp.log" 2>&1 &
B_cp=$!
pids+=("$B_cp")
appliance_wait B || { appliance_failed B; exit 1; }

echo "# 4. the destination's dataplane dies mid-migration"
start_slow 4 || exit 1
kill -KILL "$B_dp"
wait "$mig"
rc=$?
sed 's/^/#   /' "$work/m4.out"
check "novactl migrate fails (exit 1)" "[ $rc -eq 1 ]"
check "and says why (the destination's dataplane)" "grep -q 'dataplane' $work/m4.out"
check "the source VM still runs" "[ \"\$(vm_status src4)\" = running ]"
check "the source's dataplane and control plane are up" "kill -0 $A_dp && ctl A health >/dev/null"
kill -KILL "${qemus[@]}" 2>/dev/null
wait "${qemus[@]}" 2>/dev/null
qemus=()

echo "# 5. the source's dataplane dies mid-migration"
appliance_stop B
appliance_start B "$wan-b" || exit 1
start_slow 6 || exit 1
kill -KILL "$A_dp"
wait "$mig"
rc=$?
sed 's/^/#   /' "$work/m6.out"
check "novactl migrate fails (exit 1)" "[ $rc -eq 1 ]"
check "and says why (this host's dataplane)" "grep -q \"this host's dataplane\" $work/m6.out"
check "the source VM still runs" "[ \"\$(vm_status src6)\" = running ]"
check "the destination's session ends" "sleep 3; ! ctl B --json session list | grep -q '\"state\": \"established\"'"

echo "# 5b. the source's control plane dies between opening the destination's session and its own"
kill -KILL "${qemus[@]}" 2>/dev/null
wait "${qemus[@]}" 2>/dev/null
qemus=()
appliance_stop A
appliance_start A "$wan-a" || exit 1
qemu_start src7 "$wan-a" && qemu_start dst7 "$wan-b" -incoming "unix:$work/in7.sock" -S &&
	wait_sock "$work/in7.sock" || exit 1
# Its own dataplane stopped, the control plane waits (3 s) for its session
# there after the destination's is open: both are killed in that wait, so
# no INIT ever comes.
kill -STOP "$A_dp"
ctl A migrate "$work/src7.qmp" --to host-b --dest "unix:$work/in7.sock" --no-wait >/dev/null 2>&1
waiting=0
for _ in $(seq 50); do
	ctl B --json session list 2>/dev/null | grep -q '"state": "listening"' && { waiting=1; break; }
	sleep 0.1
done
kill -KILL "$A_cp" "$A_dp"
check "the destination's session waits for the INIT" "[ $waiting -eq 1 ]"
listening_gone() { # within 3 s, B has no session waiting for its INIT
	for _ in $(seq 30); do
		ctl B --json session list | grep -q '"state": "listening"' || return 0
		sleep 0.1
	done
	return 1
}
check "the source's control plane gone, the destination closes it" listening_gone
check "and says so in its log" "grep -q 'still waiting for the INIT, closed' $work/B.cp.log"

echo "# 6. peer configuration errors stop the control plane with the reason"
out=$(ip netns exec "$wan-b" timeout 20 "$CP" --config "$work/B.yaml" --set "controlplane.peers=host-a" 2>&1)
rc=$?
check "a peer that is not NAME=IP:PORT" "[ $rc -ne 0 ] && grep -q \"'host-a' is not NAME=IP:PORT\" <<<\"\$out\""
out=$(ip netns exec "$wan-b" timeout 20 "$CP" --config "$work/B.yaml" --set "controlplane.peer_psk=short" 2>&1)
rc=$?
check "a peer key that is too short" "[ $rc -ne 0 ] && grep -q 'peer_psk must have 16-64' <<<\"\$out\""
# Two names whose session prefixes meet (same 8 first characters, same
# first 6 hex digits of SHA-256): one host could touch the other's sessions.
out=$(ip netns exec "$wan-b" timeout 20 "$CP" --config "$work/B.yaml" --set "controlplane.peers=host-b-10699=10.77.0.1:7480;host-b-15954=10.77.0.1:7481" 2>&1)
rc=$?
check "two peers whose migrations' names would meet" "[ $rc -ne 0 ] && grep -q \"would name their migrations' sessions alike (mig-host-b-1.55deda-)\" <<<\"\$out\""

echo "1..$checks"
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
