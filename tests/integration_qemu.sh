#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# integration_qemu: the QEMU harness on real guests, QEMU to QEMU (no appliances).
# The guest comes from tools/mkguest (Debian cloud kernel, busybox, the workload)
# with 256 MiB - 8 KiB of RAM, 128 MiB of it filled. Two guests, each migrated
# along a chain of fresh destinations (every destination is started paused, -S):
#   idle:      plain precopy, then multifd x4, over UNIX sockets
#   dirtying:  (20 MB/s, migrated at 1 Gbit/s) plain precopy, multifd x4, then multifd x4 through a byte
#              relay (tools/qmp.py --relay) that must see 1 + 4 connections
# After each migration the paused destination's RAM equals the paused source's
# (pmemsave, page by page), then `cont`: the heartbeat goes on from the source's
# number and the guest's own page checksums find nothing corrupt.
set -uo pipefail

S=${NC_SOURCE:-$(cd "$(dirname "$0")/.." && pwd)}
QEMU_WORK=$(mktemp -d /tmp/nc-qemu.XXXXXX)
. "$S/tests/lib_qemu.sh"
FILL=${QEMU_TEST_FILL_MB:-128}
DIRTY=${QEMU_TEST_DIRTY_MBPS:-20}
# Dirtying migrations are capped at 1 Gbit/s so that they take several passes
# (pages dirtied while RAM is copied are sent again): that is what can go wrong.
BW=125000000

failures=0
checks=0
t_start=$(date +%s)

cleanup() {
	qemu_cleanup
	[ -n "${QEMU_KEEP:-}" ] && echo "# kept $QEMU_WORK" || rm -rf "$QEMU_WORK"
}
trap cleanup EXIT
trap "exit 1" INT TERM

ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
finish() {
	echo "# $(($(date +%s) - t_start)) s"
	echo "1..$checks"
	echo "$((checks - failures)) passed, $failures failed"
	[ "$failures" -eq 0 ]
	exit
}

# since T: seconds from T (date +%s.%N) to now, one decimal
since() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
t=$(date +%s.%N)
check "mkguest builds or finds the guest" "qemu_guest"
[ -n "$QEMU_KERNEL" ] || finish
out=$("$S/tools/mkguest")
check "mkguest's second run prints the same paths" "[ \"\$out\" = \"$QEMU_KERNEL
$QEMU_INITRD\" ]"
check "a RAM size that is a multiple of 256 KiB is refused" "! qemu_start bad --mem 262144 2>/dev/null"

# step NAME SRC DST URI [qemu_migrate options]: migrate, compare RAM, resume.
step() {
	local what=$1 src=$2 dst=$3 uri=$4
	shift 4
	if ! qemu_start "$dst" --incoming --fill "$FILL" --dirty "${dirty_of[$src]}"; then
		not_ok "$what: destination started"
		return 1
	fi
	dirty_of[$dst]=${dirty_of[$src]}
	local t0
	t0=$(date +%s.%N)
	if ! qemu_migrate "$src" "$dst" "$uri" "$@"; then
		not_ok "$what: migration completed"
		return 1
	fi
	ok "$what: migration completed ($(since "$t0") s wall)"
	check "$what: the paused destination's RAM equals the source's" "qemu_compare_ram $src $dst"
	check "$what: the destination runs on after cont (heartbeat, no corrupt page)" "qemu_cont_check $dst $src"
}

declare -A dirty_of=([I0]=0 [D0]=$DIRTY)
check "idle guest boots" "qemu_start I0 --fill $FILL --dirty 0"
check "dirtying guest boots" "qemu_start D0 --fill $FILL --dirty $DIRTY --seed 2"
check "idle guest filled $FILL MiB (ready, heartbeat)" "qemu_wait_ready I0 180"
check "dirtying guest filled $FILL MiB (ready, heartbeat)" "qemu_wait_ready D0 180"
echo "# both guests ready $(since "$t") s after start"

echo "# idle guest"
step "idle, plain" I0 I1 "unix:$QEMU_WORK/i1.sock"
qemu_stop I0
step "idle, multifd x4" I1 I2 "unix:$QEMU_WORK/i2.sock" --multifd 4
qemu_stop I1
qemu_stop I2

echo "# dirtying guest, $DIRTY MB/s"
step "dirtying, plain" D0 D1 "unix:$QEMU_WORK/d1.sock" --bandwidth $BW
qemu_stop D0
step "dirtying, multifd x4" D1 D2 "unix:$QEMU_WORK/d2.sock" --multifd 4 --bandwidth $BW
qemu_stop D1

echo "# dirtying guest through a byte relay"
if qemu_relay_start relay "unix:$QEMU_WORK/relay.sock" "unix:$QEMU_WORK/d3.sock" --conns 5; then
	step "dirtying, multifd x4 via relay" D2 D3 "unix:$QEMU_WORK/d3.sock" --multifd 4 \
		--bandwidth $BW --src-uri "unix:$QEMU_WORK/relay.sock"
	check "the relay carried 5 connections (main + 4 channels)" "qemu_relay_wait relay 30 &&
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d[\"conns\"]) == 5, d' $QEMU_WORK/relay.json"
	sent=$(qemu_migration_info D2 D3 ram.transferred)
	relayed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$QEMU_WORK/relay.json" 2>/dev/null)
	echo "# relay: ${relayed:-?} bytes forward, QEMU counted ${sent:-?} bytes of RAM"
	check "the relay carried at least the RAM QEMU sent" "[ \"${relayed:-0}\" -ge \"${sent:-1}\" ]"
	# The compare must be able to fail: the resumed guest has dirtied pages since.
	sleep 1
	check "the RAM compare sees the pages the running guest changed" "! qemu_compare_ram D2 D3 2>/dev/null"
else
	not_ok "relay started"
fi
qemu_stop D2
qemu_stop D3
finish
