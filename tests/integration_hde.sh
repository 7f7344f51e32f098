#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# integration_hde: HDE on streams that a real QEMU 7.2 writes. A small TCG
# guest (no OS: SeaBIOS runs for a moment, so some pages are filled) is
# migrated to a file (plain precopy) and, a second one, with multifd over 2
# channels to a UNIX socket whose every connection socat records. Each stream
# must round-trip byte-exact through novacron-hde (encode to a file, decode,
# cmp, and `stats` with several settings), and the recogniser must find
# exactly the normal pages QEMU reports sending, losing its way nowhere in
# the multifd channels.
set -euo pipefail

B=${NC_BUILD:?}
HDE=$B/tools/hde/novacron-hde
work=$(mktemp -d /tmp/nc-hde.XXXXXX)
pids=()
checks=0
failures=0

cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

command -v qemu-system-x86_64 >/dev/null || { echo "integration_hde: qemu-system-x86_64 missing" >&2; exit 1; }
command -v socat >/dev/null || { echo "integration_hde: socat missing" >&2; exit 1; }

hmp() { printf '%s\n' "$2" | socat -t 2 - "UNIX-CONNECT:$work/$1.mon" 2>/dev/null | tr -d '\r'; }

# start_qemu NAME: a 64 MiB - 8 KiB guest (not a multiple of 256 KiB, at
# which QEMU 7.2 under TCG loses dirty pages: DESIGN.md) with its HMP monitor
# on a socket
start_qemu() {
	qemu-system-x86_64 -M pc -accel tcg -m 65528k -display none -nodefaults \
		-monitor "unix:$work/$1.mon,server,nowait" 2>>"$work/qemu.log" &
	pids+=($!)
	for _ in $(seq 100); do [ -S "$work/$1.mon" ] && return 0; sleep 0.1; done
	echo "integration_hde: qemu $1 did not start" >&2
	exit 1
}

# wait_done NAME: until the migration completes; prints QEMU's normal pages
wait_done() {
	local out
	for _ in $(seq 300); do
		out=$(hmp "$1" 'info migrate')
		if grep -q 'Migration status: completed' <<<"$out"; then
			sed -n 's/^normal: \([0-9]*\) pages.*/\1/p' <<<"$out"
			return 0
		fi
		grep -q 'Migration status: failed' <<<"$out" && break
		sleep 0.1
	done
	echo "integration_hde: migration of $1 did not complete" >&2
	return 1
}

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# roundtrip FILE: encode/decode through files, and stats with several settings
roundtrip() {
	local f=$1 s
	"$HDE" encode --setting zstd3 --cache-mb 16 "$f" "$f.hde" &&
		"$HDE" decode --cache-mb 16 "$f.hde" "$f.back" && cmp -s "$f" "$f.back" || return 1
	for s in fastest zstd1 igzip1 adaptive; do
		"$HDE" stats --setting "$s" --cache-mb 16 --chunk 7919 "$f" >"$f.$s.json" || return 1
		[ "$(json 'd["roundtrip_exact"]' <"$f.$s.json")" = True ] || return 1
	done
}

# 1. plain precopy to a file
start_qemu pre
sleep 1
hmp pre "migrate \"exec:cat > $work/precopy.bin\"" >/dev/null
normal=$(wait_done pre)
check "precopy stream captured ($(stat -c %s "$work/precopy.bin") bytes, $normal normal pages)" \
	test -s "$work/precopy.bin" -a "${normal:-0}" -gt 0
check "precopy round-trips byte-exact (encode/decode files, stats x4)" roundtrip "$work/precopy.bin"
found=$(json 'd["recogniser"]["pages"]' <"$work/precopy.bin.zstd1.json")
check "recogniser found QEMU's $normal normal pages in precopy (found $found)" test "$found" = "$normal"
zb=$(zstd -1 -c "$work/precopy.bin" | wc -c)
hb=$(json 'd["output_bytes"]' <"$work/precopy.bin.zstd1.json")
check "HDE zstd1 ($hb bytes) beats zstd -1 over the stream ($zb bytes)" test "$hb" -lt "$zb"

# 2. multifd, 2 channels, every connection recorded
socat -u "UNIX-LISTEN:$work/mf.sock,fork" SYSTEM:"cat > $work/mf-conn-\$\$.bin" &
pids+=($!)
start_qemu mf
sleep 1
hmp mf 'migrate_set_capability multifd on' >/dev/null
hmp mf 'migrate_set_parameter multifd-channels 2' >/dev/null
hmp mf "migrate -d unix:$work/mf.sock" >/dev/null
normal=$(wait_done mf)
sleep 0.5
files=("$work"/mf-conn-*.bin)
check "multifd: 3 connections recorded (${#files[@]})" test "${#files[@]}" -eq 3
total=0
for f in "${files[@]}"; do
	check "multifd connection $(basename "$f") round-trips byte-exact" roundtrip "$f"
	total=$((total + $(json 'd["recogniser"]["pages"]' <"$f.zstd1.json")))
	if [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' ')" = 11223344 ]; then
		lost=$(json 'd["recogniser"]["lost"]' <"$f.zstd1.json")
		check "recogniser never lost its way in channel $(basename "$f") (lost $lost)" test "$lost" = 0
	fi
done
check "recogniser found QEMU's $normal normal pages across the channels (found $total)" \
	test "$total" = "$normal"

echo "integration_hde: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
