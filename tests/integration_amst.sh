#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# integration_amst: AMST between two real dataplanes, each with its control
# plane, driven with novactl. Host connections come from tests/amst_streams.py
# (standing in for QEMU): it checks SHA-256 of every connection at both ends.
#   1. memif: AMST_MEMIF_MB (default 512) MiB on each of 4 streams, sealed;
#      then test streams (test:STREAMS:BYTES, made and checked inside the
#      dataplanes), and a test sink fed other bytes resets its stream.
#      Sealing off (amst.seal: false), memif rings of 32 slots: the sender
#      sends stream bytes from its buffers as external mbuf segments, and
#      copies whole what the full ring leaves; byte-exact, no bad checksum.
#   2. memif: the receiving dataplane is killed mid-stream: the sending
#      session ends with an error and its host connections are closed.
#   3. memif: sessions nobody uses end (amst.unused_close_s), one in use
#      does not; a receiving session that gets no INIT is removed.
#   4. WAN (tools/wan, af_packet ports in network namespaces): 256 MiB on
#      wan1g and on wan1g-lossy; 64 MiB on wan1g-lossy with sealing off (sent
#      from the stream buffers); forged packets are dropped and counted; the
#      link is cut mid-stream: both sessions end with an error.
# Set AMST_SKIP_WAN=1 to run only the memif part.
set -uo pipefail

B=${NC_BUILD:?}
S=${NC_SOURCE:?}
DP=$B/dataplane/novacron-dp
CP=$B/controlplane/novacron-cp
CTL=$B/tools/novactl
PY="python3 $S/tests/amst_streams.py"
. "$S/tests/lib_appliance.sh"
MB=${AMST_MEMIF_MB:-512}

work=$(mktemp -d /tmp/nc-amst.XXXXXX)
wan=ncamst$$
pids=()
failures=0
checks=0
PSK=integration-test-psk-0123456789

cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -z "${AMST_SKIP_WAN:-}" ] && "$S/tools/wan" down --name "$wan" >/dev/null 2>&1
	[ -n "${AMST_KEEP:-}" ] && echo "# kept $work" || rm -rf "$work"
	local n
	for n in A B WA WB U V WC WD WJ WK; do
		rm -rf "/var/run/dpdk/nc$n$$"
		# A dataplane killed with SIGKILL leaves its hugepage files behind.
		rm -f /dev/hugepages/nc$n$$map_*
	done
}
trap cleanup EXIT

ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

# config NAME PREFIX LCORES PORT IP MTU [SEAL] -> $work/NAME.yaml
config() {
	mkdir -p "$work/$1"
	cat >"$work/$1.yaml" <<EOF
runtime:
  dir: $work/$1
dataplane:
  lcores: "$3"
  file_prefix: $2
  ports:
    - "$4"
amst:
  ip: $5
  psk: $PSK
  mtu: $6
  seal: ${7:-true}
  idle_timeout_ms: 5000
  closed_linger_s: 10
  session_memory_mb: 256
hde:
  cache_mb: 64
controlplane:
  dp_timeout_ms: 3000
EOF
}



state_of() { ctl "$1" --json session stats "$2" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null; }

wait_state() { # wait_state NODE SESSION STATE SECONDS
	for _ in $(seq $(($4 * 10))); do
		[ "$(state_of "$1" "$2")" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# compare SRC.json DST.json N: every connection arrived whole, in order
compare() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, sys
src = json.load(open(sys.argv[1])); dst = json.load(open(sys.argv[2])); n = int(sys.argv[3])
bad = []
if src["error"] or dst["error"]:
    bad.append(f"errors: send '{src['error']}' serve '{dst['error']}'")
for i in range(n):
    s = src["conns"][i]; d = dst["conns"][i]
    if d["index"] != i:
        bad.append(f"destination connection {i} is source connection {d['index']}")
    if s["sha256"] != d["sha256"] or s["bytes"] != d["bytes"]:
        bad.append(f"connection {i}: sent {s['bytes']} {s['sha256'][:16]} got {d['bytes']} {d['sha256'][:16]}")
mb = sum(c["bytes"] for c in src["conns"]) / 1048576
print(f"# {mb:.0f} MiB in {src['seconds']:.2f} s = {mb * 8.388608 / max(src['seconds'], 1e-9):.0f} Mbit/s")
for b in bad:
    print("# " + b)
sys.exit(1 if bad else 0)
PY
}

free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
if [ "${free:-0}" -lt 512 ]; then
	echo "Bail out! needs 512 free hugepages (have ${free:-0}): run tools/novacron setup"
	exit 1
fi

echo "# 1. two dataplanes over memif"
config A ncA$$ "0-1" "memif:role=server,socket=$work/memif.sock,bsize=10240" 10.88.0.1/24 9000
config B ncB$$ "0@1,1@0" "memif:role=client,socket=$work/memif.sock,bsize=10240" 10.88.0.2/24 9000
appliance_start A && appliance_start B || exit 1
check "send-side session.open" "ctl A session open s1 send 10.88.0.2 unix:$work/src.sock >/dev/null"
check "receive-side session.open" "ctl B session open s1 receive 10.88.0.1 unix:$work/dst.sock >/dev/null"
out=$(ctl A session open s1 send 10.88.0.2 unix:$work/other.sock 2>&1)
check "a second session of the same name is refused" "grep -q 'exists' <<<\"\$out\""
out=$(ctl A session open s9 send 10.99.0.2 unix:$work/x.sock 2>&1)
check "an unreachable peer is refused" "grep -q 'outside our subnet' <<<\"\$out\""
out=$(ctl A session open s9 sideways 10.88.0.2 unix:$work/x.sock 2>&1)
check "a bad role is refused" "grep -q \"role must be\" <<<\"\$out\""
out=$(ctl A session open s9 send 10.88.0.2 ftp:/x 2>&1)
check "a bad address is refused" "[ \$? -ne 0 ] && [ -n \"\$out\" ]"
# A receiving session whose destination is a socket its own dataplane
# listens on for another session: the stream is refused, nothing crosses.
for o in "A s5 send 10.88.0.2 unix:$work/src5.sock" "A s6 receive 10.88.0.2 unix:$work/src5.sock" \
	"B s6 send 10.88.0.1 unix:$work/src6.sock"; do
	set -- $o
	out=$(ctl "$1" session open "${@:2}" 2>&1) || echo "#   session open ${*:2}: $out"
done
$PY send "unix:$work/src6.sock" --conns 1 --bytes 65536 --out "$work/src6.json" --timeout 15 >/dev/null 2>&1
streams_of() { ctl "$1" --json session stats "$2" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["connect_failed"], len(s["stream_list"]))'; }
refused_within() { # within 5 s, A's s6 counts the connect it did not make
	for _ in $(seq 50); do
		[ "$(streams_of A s6 | cut -d' ' -f1)" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}
check "a stream bound for its own dataplane's listener is refused" refused_within
check "it was logged" "grep -q 'src5.sock is where this dataplane listens for a session' $work/A.dp.log"
check "and nothing reached that listener" "[ \"\$(streams_of A s5 | cut -d' ' -f2)\" = 0 ]"
ctl A session close s5 >/dev/null
ctl A session close s6 >/dev/null
ctl B session close s6 >/dev/null
$PY serve "unix:$work/dst.sock" --conns 4 --out "$work/dst1.json" &
srv=$!
sleep 0.3
$PY send "unix:$work/src.sock" --conns 4 --bytes $((MB << 20)) --seed 11 --out "$work/src1.json"
rc=$?
wait $srv
check "4 streams x $MB MiB sent without error" "[ $rc -eq 0 ]"
check "every stream arrived byte-exact (SHA-256) and in order" "compare $work/src1.json $work/dst1.json 4"
check "session established on both sides" "[ \"\$(state_of A s1)\" = established ] && [ \"\$(state_of B s1)\" = established ]"
ctl A --json session stats s1 >"$work/statsA.json"
check "stats show the bytes and a pacing rate" "python3 -c 'import json; s=json.load(open(\"$work/statsA.json\")); assert s[\"stream_bytes_sent\"] >= 4*$MB*1048576 and s[\"pacing_mbps\"] > 0 and len(s[\"stream_list\"]) == 4'"
check "no packet failed authentication" "python3 -c 'import json; s=json.load(open(\"$work/statsA.json\")); assert s[\"drops\"][\"auth_failed\"] == 0'"
check "session.set changes the rate cap" "ctl A session set s1 200 >/dev/null && sleep 0.3 && ctl A --json session stats s1 | python3 -c 'import json,sys; assert abs(json.load(sys.stdin)[\"rate_cap_mbps\"] - 200) < 0.01'"
check "session.set changes the unsent limit, and only that" "ctl A call session.set '{\"name\": \"s1\", \"unsent_ms\": 0}' >/dev/null && sleep 0.3 && ctl A --json session stats s1 | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s[\"unsent_ms\"] == 0 and abs(s[\"rate_cap_mbps\"] - 200) < 0.01, s'"
out=$(ctl B call session.set '{"name": "s1", "unsent_ms": 5}' 2>&1)
check "the unsent limit is the sending side's: refused on the receiver" "[ \$? -ne 0 ] && grep -q 'sending side' <<<\"\$out\""
check "the receiver follows its reader by default" "ctl B --json session stats s1 | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s[\"follow_reader\"] is True, s'"
check "session.set switches the receiver to whole buffers, and only that" "ctl B call session.set '{\"name\": \"s1\", \"follow_reader\": false}' >/dev/null && sleep 0.3 && ctl B --json session stats s1 | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s[\"follow_reader\"] is False and s[\"rate_cap_mbps\"] == 0, s'"
check "... and back" "ctl B call session.set '{\"name\": \"s1\", \"follow_reader\": true}' >/dev/null && sleep 0.3 && ctl B --json session stats s1 | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"follow_reader\"] is True'"
out=$(ctl A call session.set '{"name": "s1", "follow_reader": false}' 2>&1)
check "windows are the receiving side's: refused on the sender" "[ \$? -ne 0 ] && grep -q 'receiving side' <<<\"\$out\""
out=$(ctl B call session.set '{"name": "s1", "follow_reader": "no"}' 2>&1)
check "follow_reader that is not a boolean: refused" "[ \$? -ne 0 ] && grep -q 'follow_reader' <<<\"\$out\""
out=$(ctl A call session.set '{"name": "s1"}' 2>&1)
check "session.set with nothing to set: refused" "[ \$? -ne 0 ] && grep -q 'rate_mbps, unsent_ms or follow_reader' <<<\"\$out\""
check "session.list lists it" "ctl A session list | grep -q s1"
check "session.close closes it" "ctl A session close s1 >/dev/null"
check "the peer sees the close" "wait_state B s1 closed 5"
check "a closed session can be removed" "ctl B session close s1 >/dev/null && sleep 0.3 && ! ctl B --json session list | grep -q '\"s1\"'"

echo "# sessions are matched by name: two at once from the same peer, and one nobody waits for"
check "two sessions opened at once" "ctl A session open m1 send 10.88.0.2 unix:$work/m1s.sock >/dev/null && ctl A session open m2 send 10.88.0.2 unix:$work/m2s.sock >/dev/null && ctl B session open m2 receive 10.88.0.1 unix:$work/m2d.sock >/dev/null && ctl B session open m1 receive 10.88.0.1 unix:$work/m1d.sock >/dev/null"
for m in m1 m2; do
	$PY serve "unix:$work/${m}d.sock" --conns 2 --out "$work/${m}d.json" --timeout 30 &
	eval "srv_$m=\$!"
done
sleep 0.3
$PY send "unix:$work/m1s.sock" --conns 2 --bytes $((16 << 20)) --seed 21 --out "$work/m1s.json" &
s1=$!
$PY send "unix:$work/m2s.sock" --conns 2 --bytes $((16 << 20)) --seed 22 --out "$work/m2s.json"
rc2=$?
wait $s1
rc1=$?
wait "$srv_m1" "$srv_m2"
check "both carried their streams byte-exact, each to its own destination" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && compare $work/m1s.json $work/m1d.json 2 && compare $work/m2s.json $work/m2d.json 2"
unmatched() { ctl B --dp --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["amst"]["drops"]["init_unmatched"])'; }
ctl B session open other receive 10.88.0.1 "unix:$work/other.sock" >/dev/null
u0=$(unmatched)
ctl A session open lost send 10.88.0.2 "unix:$work/lost.sock" >/dev/null
for _ in $(seq 50); do [ "$(unmatched)" -gt "$u0" ] && break; sleep 0.1; done
check "an INIT naming a session the receiver does not have is refused and counted" "[ \"\$(unmatched)\" -gt $u0 ]"
check "the waiting session of another name is left waiting" "[ \"\$(state_of B other)\" = listening ]"
for m in m1 m2 lost; do ctl A session close $m >/dev/null 2>&1; done
for m in m1 m2 other; do ctl B session close $m >/dev/null 2>&1; done
sleep 0.3
for m in m1 m2 other; do ctl B session close $m >/dev/null 2>&1; done

echo "# test streams: made and checked inside the dataplanes (no host connection)"
check "test-stream sessions opened" "ctl A session open t1 send 10.88.0.2 test:3:64M >/dev/null && ctl B session open t1 receive 10.88.0.1 test: >/dev/null"
tdone() { ctl B --json session stats t1 2>/dev/null | python3 -c 'import json,sys
s = json.load(sys.stdin); l = s["stream_list"]
assert len(l) == 3 and all(x["from_peer"] == 64 << 20 and x["peer_fin"] and not x["reset"] for x in l)' 2>/dev/null; }
for _ in $(seq 300); do tdone && break; sleep 0.1; done
check "3 x 64 MiB of the pattern arrived, checked, each stream finished cleanly" "tdone"
check "no test byte differed, on either side" "ctl A --json session stats t1 | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s[\"host_errors\"] == 0 and sum(x[\"to_peer\"] for x in s[\"stream_list\"]) == 3 * (64 << 20), s' && ctl B --json session stats t1 | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"host_errors\"] == 0'"
out=$(ctl A call session.open '{"name": "tx", "role": "send", "peer": "10.88.0.2", "listen": "test:2", "codec": "hde"}' 2>&1)
check "test streams are not HDE-coded: refused" "[ \$? -ne 0 ] && grep -q 'not HDE-coded' <<<\"\$out\""
out=$(ctl A session open tx send 10.88.0.2 test: 2>&1)
check "a sending session of test streams needs a count: refused" "[ \$? -ne 0 ] && grep -q 'need a count' <<<\"\$out\""
out=$(ctl A session open tx send 10.88.0.2 test:2:5X 2>&1)
check "a bad test address: refused, saying why" "[ \$? -ne 0 ] && grep -q 'K, M, G or T' <<<\"\$out\""
ctl A session close t1 >/dev/null 2>&1
echo "# a test sink given anything but the pattern resets the stream and counts it"
ctl A session open t2 send 10.88.0.2 "unix:$work/t2s.sock" >/dev/null
ctl B session open t2 receive 10.88.0.1 test: >/dev/null
$PY send "unix:$work/t2s.sock" --conns 1 --bytes $((4 << 20)) --seed 5 --out "$work/t2s.json" --timeout 10 >/dev/null 2>&1
sreset() { ctl "$1" --json session stats t2 2>/dev/null | python3 -c 'import json,sys
s = json.load(sys.stdin); l = s["stream_list"]
assert len(l) == 1 and l[0]["reset"] and s["host_errors"] == int(sys.argv[1])' "$2" 2>/dev/null; }
for _ in $(seq 100); do sreset B 1 && sreset A 0 && break; sleep 0.1; done
check "the sink counted a host error and reset the stream" "sreset B 1"
check "the sending side's stream was reset by it (its connection closed abortively)" "sreset A 0"
ctl A session close t2 >/dev/null 2>&1
sleep 0.3
for t in t1 t2; do ctl B session close $t >/dev/null 2>&1; ctl A session close $t >/dev/null 2>&1; done

echo "# HDE: QEMU-like and adversarial streams through two dataplanes, byte-exact"
HDE=$B/tools/hde/novacron-hde
"$HDE" synth --kind idle --ram-mb 48 --seed 3 "$work/h-idle" >/dev/null &&
	"$HDE" synth --kind dirty --ram-mb 48 --seed 4 "$work/h-dirty" >/dev/null &&
	"$HDE" synth --kind multifd --ram-mb 32 --seed 5 "$work/h-multifd" >/dev/null
python3 - "$work" <<'PY'
import os, random, struct, sys
w = sys.argv[1]
rng = random.Random(7)
open(f"{w}/h-random", "wb").write(rng.randbytes(6 << 20))
# QEMU page record headers (offset | PAGE, block name) around garbage of every length.
out = bytearray(b"QEVM\0\0\0\3")
for i in range(3000):
    flags = rng.choice([0x08, 0x02, 0x28, 0x22, 0x10, 0x40])
    out += struct.pack(">Q", (rng.randrange(1 << 16) << 12) | flags)
    if not flags & 0x20:
        out += bytes([6]) + b"pc.ram"
    out += rng.randbytes(rng.choice([0, 1, 7, 4095, 4096, 4097, 9000]))
open(f"{w}/h-garbage", "wb").write(out)
# A real-looking stream cut inside a page record.
d = open(f"{w}/h-dirty", "rb").read()
open(f"{w}/h-truncated", "wb").write(d[: len(d) // 2 + 1234])
PY
hde_files1=$work/h-idle,$work/h-dirty,$work/h-random
hde_files2=$work/h-garbage,$work/h-truncated,$work/h-multifd
check "sessions with codec hde opened" "ctl A call session.open '{\"name\": \"h1\", \"role\": \"send\", \"peer\": \"10.88.0.2\", \"listen\": \"unix:$work/h1s.sock\", \"codec\": \"hde\", \"streams\": 3, \"digest\": true}' >/dev/null && ctl A call session.open '{\"name\": \"h2\", \"role\": \"send\", \"peer\": \"10.88.0.2\", \"listen\": \"unix:$work/h2s.sock\", \"codec\": \"hde\", \"streams\": 3}' >/dev/null && ctl B call session.open '{\"name\": \"h1\", \"role\": \"receive\", \"peer\": \"10.88.0.1\", \"connect\": \"unix:$work/h1d.sock\", \"digest\": true}' >/dev/null && ctl B session open h2 receive 10.88.0.1 unix:$work/h2d.sock >/dev/null"
out=$(ctl B call session.open '{"name": "hx", "role": "receive", "peer": "10.88.0.1", "connect": "unix:/tmp/x.sock", "codec": "hde"}' 2>&1)
check "the receiving side cannot choose the codec" "[ \$? -ne 0 ] && grep -q 'receiver follows' <<<\"\$out\""
for h in h1 h2; do
	$PY serve "unix:$work/${h}d.sock" --conns 3 --raw --out "$work/${h}d.json" --timeout 60 &
	eval "srv_$h=\$!"
done
sleep 0.3
$PY send "unix:$work/h1s.sock" --conns 3 --files "$hde_files1" --out "$work/h1s.json" --timeout 60 &
s1=$!
$PY send "unix:$work/h2s.sock" --conns 3 --files "$hde_files2" --out "$work/h2s.json" --timeout 60
rc2=$?
wait $s1
rc1=$?
wait "$srv_h1" "$srv_h2"
check "every stream arrived byte-exact through HDE (SHA-256)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && compare $work/h1s.json $work/h1d.json 3 && compare $work/h2s.json $work/h2d.json 3"
ctl A --json session stats h1 >"$work/h1A.json"
ctl B --json session stats h1 >"$work/h1B.json"
check "HDE coded the streams: fewer frame bytes than stream bytes, pages recognised, deltas found" "python3 -c 'import json; h=json.load(open(\"$work/h1A.json\"))[\"hde\"]; print(\"# sender:\", h[\"stream_bytes\"], \"->\", h[\"frame_bytes\"], \"ratio %.2f\" % h[\"ratio\"]); assert h[\"frame_bytes\"] < h[\"stream_bytes\"] and h[\"recognised_pages\"] > 0 and h[\"tiers\"][\"delta\"][\"pages\"] > 0 and h[\"streams\"] == 3'"
check "the receiver decoded them with no error, within its cache bound" "python3 -c 'import json; h=json.load(open(\"$work/h1B.json\"))[\"hde\"]; assert h[\"errors\"] == 0 and h[\"stream_bytes\"] > h[\"frame_bytes\"] and 0 < h[\"cache_peak\"] <= h[\"cache_limit\"] == 64 << 20, h'"
check "stream digests of the raw bytes are equal at both ends" "python3 -c 'import json; a=json.load(open(\"$work/h1A.json\"))[\"stream_list\"]; b=json.load(open(\"$work/h1B.json\"))[\"stream_list\"]; assert len(a) == 3 and all(len(x[\"xxh128\"]) == 32 for x in a) and [x[\"xxh128\"] for x in a] == [x[\"xxh128\"] for x in b], (a, b)'"
for h in h1 h2; do ctl A session close $h >/dev/null 2>&1; done
sleep 0.3
for h in h1 h2; do ctl B session close $h >/dev/null 2>&1; ctl A session close $h >/dev/null 2>&1; done

# The captured corpus (tools/capture-streams), when this machine has one:
# every stream of it through HDE on the dataplanes, byte-exact.
corpus=${NC_CORPUS:-/var/tmp/novacron/streams}
if [ -f "$corpus/manifest.json" ]; then
	while read -r name files n; do
			ctl A call session.open "{\"name\": \"c-$name\", \"role\": \"send\", \"peer\": \"10.88.0.2\", \"listen\": \"unix:$work/c.sock\", \"codec\": \"hde\", \"streams\": $n}" >/dev/null
			ctl B session open "c-$name" receive 10.88.0.1 "unix:$work/cd.sock" >/dev/null
			$PY serve "unix:$work/cd.sock" --conns "$n" --raw --out "$work/cd.json" --timeout 120 &
			srv=$!
			sleep 0.3
			$PY send "unix:$work/c.sock" --conns "$n" --files "$files" --out "$work/cs.json" --timeout 120
			wait $srv
			check "corpus $name ($n stream(s)) byte-exact through HDE" "compare $work/cs.json $work/cd.json $n"
			ctl A --json session stats "c-$name" | python3 -c 'import json,sys; h=json.load(sys.stdin)["hde"]; print("#   %s -> %s bytes, ratio %.2f" % (h["stream_bytes"], h["frame_bytes"], h["ratio"]))'
			ctl A session close "c-$name" >/dev/null 2>&1
			sleep 0.3
			ctl B session close "c-$name" >/dev/null 2>&1
			ctl A session close "c-$name" >/dev/null 2>&1
		done < <(python3 -c 'import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
for s in m["streams"]:
    print(s["name"], ",".join(sys.argv[1] + "/" + f for f in s["files"]), len(s["files"]))' "$corpus")
else
	echo "# no corpus at $corpus (tools/capture-streams makes one): skipped"
fi

echo "# sealing off: stream bytes leave from the stream buffers"
appliance_stop A B
config U ncU$$ "0-1" "memif:role=server,socket=$work/memif-u.sock,bsize=10240,rsize=5" 10.88.0.1/24 9000 false
config V ncV$$ "0@1,1@0" "memif:role=client,socket=$work/memif-u.sock,bsize=10240,rsize=5" 10.88.0.2/24 9000 false
appliance_start U && appliance_start V || exit 1
gather() { ctl "$1" --dp --json status | python3 -c 'import json,sys; a=json.load(sys.stdin)["amst"]; print(a["tx_from_buffers"], a["tx_linearized"])'; }
check "the memif sender sends from the stream buffers" "[ \"\$(gather U | cut -d' ' -f1)\" = True ]"
check "unsealed sessions opened" "ctl U session open u1 send 10.88.0.2 unix:$work/u1s.sock >/dev/null && ctl V session open u1 receive 10.88.0.1 unix:$work/u1d.sock >/dev/null && ctl U session open u2 send 10.88.0.2 test:2:64M >/dev/null && ctl V session open u2 receive 10.88.0.1 test: >/dev/null"
$PY serve "unix:$work/u1d.sock" --conns 3 --out "$work/u1d.json" --timeout 60 &
srv=$!
sleep 0.3
$PY send "unix:$work/u1s.sock" --conns 3 --bytes $((96 << 20)) --seed 31 --out "$work/u1s.json" --timeout 60
rc=$?
wait $srv
check "3 x 96 MiB through UNIX sockets arrived byte-exact (SHA-256)" "[ $rc -eq 0 ] && compare $work/u1s.json $work/u1d.json 3"
udone() { ctl V --json session stats u2 2>/dev/null | python3 -c 'import json,sys
s = json.load(sys.stdin); l = s["stream_list"]
assert len(l) == 2 and all(x["from_peer"] == 64 << 20 and x["peer_fin"] and not x["reset"] for x in l) and s["host_errors"] == 0' 2>/dev/null; }
for _ in $(seq 300); do udone && break; sleep 0.1; done
check "2 x 64 MiB of test streams arrived and checked" "udone"
nocrc() { # nocrc NODE SESSION: it counted no packet with a bad CRC32C
	ctl "$1" --json session stats "$2" | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["drops"]["bad_crc"] == 0, s["drops"]'
}
check "no packet had a bad checksum, on either side" "nocrc U u1 && nocrc V u1 && nocrc U u2 && nocrc V u2"
# Rings of 32 slots (rsize=5) fill: the packets the port leaves behind are
# copied whole before the streams are written again (and arrived exact above).
check "packets the port left behind were copied whole ($(gather U | cut -d' ' -f2))" "[ \"\$(gather U | cut -d' ' -f2)\" -gt 0 ]"
appliance_stop U V
appliance_start A && appliance_start B || exit 1

echo "# 2. the receiving dataplane dies mid-stream"
check "session s2 opened" "ctl A session open s2 send 10.88.0.2 unix:$work/src2.sock >/dev/null && ctl B session open s2 receive 10.88.0.1 unix:$work/dst2.sock >/dev/null"
$PY serve "unix:$work/dst2.sock" --conns 1 --out "$work/dst2.json" --timeout 20 &
srv=$!
sleep 0.3
$PY send "unix:$work/src2.sock" --conns 1 --bytes $((4096 << 20)) --out "$work/src2.json" --timeout 20 &
snd=$!
sleep 1.5
kill -KILL "$B_dp"
wait $snd
rc=$?
check "the source connection failed instead of finishing" "[ $rc -ne 0 ]"
check "the sending session ended with an error" "wait_state A s2 closed 15 && ctl A --json session stats s2 | grep -q silent"
gone_within() { # gone_within NODE SESSION SECONDS: no longer listed
	for _ in $(seq $(($3 * 10))); do
		ctl "$1" --json session list | grep -q "\"$2\"" || return 0
		sleep 0.1
	done
	return 1
}
check "nobody removes it: it is gone after amst.closed_linger_s (10 s), not before 5 s" "ctl A --json session list | grep -q '\"s2\"' && sleep 5 && ctl A --json session list | grep -q '\"s2\"' && gone_within A s2 10"
check "the sending dataplane is still up" "kill -0 $A_dp"
kill "$srv" 2>/dev/null
kill -TERM "$B_cp" "$A_cp" "$A_dp" 2>/dev/null
wait "$A_dp" 2>/dev/null
check "the sending dataplane stops cleanly afterwards" "[ \$? -eq 0 ]"
sleep 0.5

echo "# 3. sessions nobody uses end (amst.unused_close_s, 4 s here)"
appliance_set=(amst.unused_close_s=4)
appliance_start A && appliance_start B || exit 1
appliance_set=()
check "sessions s3 (both sides, 50 Mbit/s) and s4 (receive only) opened" \
	"ctl A session open s3 send 10.88.0.2 unix:$work/src3.sock 50 >/dev/null &&
	ctl B session open s3 receive 10.88.0.1 unix:$work/dst3.sock >/dev/null &&
	ctl B session open s4 receive 10.88.0.1 unix:$work/dst4.sock >/dev/null"
$PY serve "unix:$work/dst3.sock" --conns 1 --no-hash --out "$work/dst3.json" --timeout 30 &
srv=$!
sleep 0.3
# 8 s of one stream: twice the limit, and it is not cut
$PY send "unix:$work/src3.sock" --conns 1 --seconds 8 --no-hash --out "$work/src3.json" --timeout 30
check "a stream in use for twice the limit ends cleanly" "[ \$? -eq 0 ]"
wait "$srv"
check "and its session is still up" "[ \"\$(state_of A s3)\" = established ]"
check "the receiving session that never got an INIT is removed" "gone_within B s4 2"
check "then, unused, the sending session ends, saying why" \
	"wait_state A s3 closed 8 && ctl A --json session stats s3 | grep -q 'unused for 4 s (amst.unused_close_s)'"
check "and so does its peer" "wait_state B s3 closed 3"
appliance_stop A B

if [ -n "${AMST_SKIP_WAN:-}" ]; then
	echo "1..$checks"
	echo "$((checks - failures)) passed, $failures failed"
	[ "$failures" -eq 0 ]
	exit
fi

echo "# 4. over an emulated WAN, af_packet ports in network namespaces"
# wan_carry SEND RECV NAME MIB SEED [TIMEOUT]: session NAME from SEND (10.77.0.11) to
# RECV (10.77.0.12), two streams of MIB MiB each sent and read back; then
# compare $work/src-NAME.json $work/dst-NAME.json 2.
wan_carry() {
	local n=$3 t=()
	[ -n "${6:-}" ] && t=(--timeout "$6")
	ctl "$1" session open "$n" send 10.77.0.12 "unix:$work/src-$n.sock" >/dev/null &&
		ctl "$2" session open "$n" receive 10.77.0.11 "unix:$work/dst-$n.sock" >/dev/null
	$PY serve "unix:$work/dst-$n.sock" --conns 2 --out "$work/dst-$n.json" "${t[@]}" &
	local srv=$!
	sleep 0.3
	$PY send "unix:$work/src-$n.sock" --conns 2 --bytes $(($4 << 20)) --seed "$5" \
		--out "$work/src-$n.json" "${t[@]}"
	wait $srv
}
"$S/tools/wan" up wan1g --name "$wan" >/dev/null || { not_ok "tools/wan up"; exit 1; }
config WA ncWA$$ "0-1" "af_packet:iface=a0" 10.77.0.11/24 1500
config WB ncWB$$ "0@1,1@0" "af_packet:iface=b0" 10.77.0.12/24 1500
appliance_start WA "$wan-a" && appliance_start WB "$wan-b" || exit 1
for profile in wan1g wan1g-lossy; do
	"$S/tools/wan" set "$profile" --name "$wan" >/dev/null
	n=$profile
	wan_carry WA WB "$n" 128 5
	check "$profile: 256 MiB over 2 streams byte-exact" "compare $work/src-$n.json $work/dst-$n.json 2"
	ctl WA --json session stats "$n" >"$work/stats-$n.json"
	python3 - "$work/stats-$n.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"#   srtt {s['srtt_ms']:.1f} ms, bottleneck {s['bottleneck_mbps']:.0f} Mbit/s, "
      f"resent {s['retrans_bytes'] / 1048576:.1f} MiB, lost packets {s['packets_lost']}")
PY
	ctl WA session close "$n" >/dev/null
	ctl WB session close "$n" >/dev/null
done

echo "# wan1g-lossy with sealing off: af_packet sends stream bytes from the buffers"
appliance_stop WA WB
config WC ncWC$$ "0-1" "af_packet:iface=a0" 10.77.0.11/24 1500 false
config WD ncWD$$ "0@1,1@0" "af_packet:iface=b0" 10.77.0.12/24 1500 false
appliance_start WC "$wan-a" && appliance_start WD "$wan-b" || exit 1
check "the af_packet sender sends from the stream buffers" "[ \"\$(gather WC | cut -d' ' -f1)\" = True ]"
wan_carry WC WD un 32 6 60
check "unsealed, 64 MiB over 2 streams byte-exact through 1% loss" "compare $work/src-un.json $work/dst-un.json 2"
check "no packet had a bad checksum, on either side" "nocrc WC un && nocrc WD un"
appliance_stop WC WD

echo "# jumbo frames: af_packet ports at amst.mtu 9000 (kernel slots and buffers follow the MTU)"
config WJ ncWJ$$ "0-1" "af_packet:iface=a0" 10.77.0.11/24 9000
config WK ncWK$$ "0@1,1@0" "af_packet:iface=b0" 10.77.0.12/24 9000
out=$(ip netns exec "$wan-a" timeout 30 "$DP" --config "$work/WJ.yaml" 2>&1)
check "amst.mtu 9000 over a 1500-byte interface is refused, naming the fix" \
	"printf '%s' \"\$out\" | grep -q 'interface a0 has MTU 1500, below amst.mtu 9000'"
"$S/tools/wan" set lan10g --name "$wan" >/dev/null
appliance_start WJ "$wan-a" && appliance_start WK "$wan-b" || exit 1
check "the port's kernel slots fit a 9000-byte frame" \
	"ctl WJ --dp --json status | grep -q 'framesz=9216,blocksz=36864,framecnt=912'"
wan_carry WJ WK jumbo 128 7 60
check "lan10g, MTU 9000: 256 MiB over 2 streams byte-exact" "compare $work/src-jumbo.json $work/dst-jumbo.json 2"
check "the sender's packets averaged over 7000 bytes" \
	"ctl WJ --dp --json status | python3 -c 'import json,sys; p=json.load(sys.stdin)[\"ports\"][0]; assert p[\"obytes\"] > 7000 * p[\"opackets\"], p'"
appliance_stop WJ WK
"$S/tools/wan" set wan1g-lossy --name "$wan" >/dev/null
appliance_start WA "$wan-a" && appliance_start WB "$wan-b" || exit 1

echo "# forged packets from the network are dropped and counted"
ip netns exec "$wan-a" python3 - <<'PY'
import os, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(200):
    hdr = bytes([0xA1, 3]) + struct.pack(">HIQ", 1, 0x12345678 + i, i)
    s.sendto(hdr + os.urandom(100), ("10.77.0.12", 7471))   # unknown session
    s.sendto(os.urandom(60), ("10.77.0.12", 7471))            # garbage
    s.sendto(bytes([0xA1, 1]) + os.urandom(80), ("10.77.0.12", 7471))  # bad INIT
PY
sleep 0.5
out=$(ctl WB --dp --json status)
check "forged packets counted as drops by the receiver" "python3 -c 'import json,sys; d=json.loads(sys.argv[1])[\"amst\"][\"drops\"]; assert d[\"unknown_session\"] + d.get(\"bad_handshake\", 0) + d.get(\"short\", 0) >= 200, d' \"\$out\""
check "the receiving dataplane is still up" "kill -0 $WB_dp"

echo "# the link is cut mid-stream: both sides end the session with an error"
ctl WA session open cut send 10.77.0.12 "unix:$work/src-cut.sock" >/dev/null &&
	ctl WB session open cut receive 10.77.0.11 "unix:$work/dst-cut.sock" >/dev/null
$PY serve "unix:$work/dst-cut.sock" --conns 1 --out "$work/dst-cut.json" --timeout 30 &
srv=$!
sleep 0.3
$PY send "unix:$work/src-cut.sock" --conns 1 --bytes $((2048 << 20)) --out "$work/src-cut.json" --timeout 30 &
snd=$!
sleep 2
"$S/tools/wan" set wan1g --loss 100% --name "$wan" >/dev/null
wait $snd
rc_send=$?
wait $srv
rc_srv=$?
check "the source connection failed" "[ $rc_send -ne 0 ]"
check "the destination connection failed (not a clean end)" "[ $rc_srv -ne 0 ] || ! compare $work/src-cut.json $work/dst-cut.json 1 >/dev/null"
check "the sending session ended with an error" "wait_state WA cut closed 15 && ctl WA --json session stats cut | grep -q silent"
check "the receiving session ended with an error" "wait_state WB cut closed 15 && ctl WB --json session stats cut | grep -q silent"

echo "1..$checks"
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
