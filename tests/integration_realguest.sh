#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# integration_realguest: real guests (tools/mkguest, 256 MiB - 8 KiB, 128 MiB
# filled) live-migrated through two appliances by `novactl migrate`, over the
# emulated links of tools/wan (tests/lib_mig.sh builds the topology):
#   lan10g: an idle guest, plain precopy (A to B), then multifd x4 (B to A);
#   wan1g:  a guest dirtying 20 MB/s, plain precopy, then multifd x4.
# Every migration is checked three ways: the digest of every stream is equal
# at both appliances (digest_ok), the paused destination's RAM equals the
# source's page by page (pmemsave), and after `cont` the heartbeat goes on from
# the source's number with no corrupt page; the wire bytes counted at the
# router must be at least the RAM QEMU sent (the count is real); the end-to-end
# downtime (source's STOP to the destination's "completed", QMP events) is
# measured and within the migration's total time.
set -uo pipefail

S=${NC_SOURCE:?}
B=${NC_BUILD:?}
. "$S/tests/lib_mig.sh"
MIG_MEM_K=262136
MIG_FILL_MB=${RG_FILL_MB:-128}

checks=0
failures=0
t_start=$(date +%s)
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

mig_init "${RG_WAN:-rg}"
trap mig_cleanup EXIT
trap "exit 1" INT TERM

free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
if [ "${free:-0}" -lt 256 ]; then
	echo "Bail out! needs 256 free hugepages (have ${free:-0}): run tools/novacron setup"
	exit 1
fi
command -v qemu-system-x86_64 >/dev/null || { echo "Bail out! needs qemu-system-x86"; exit 1; }
qemu_guest >/dev/null || { echo "Bail out! tools/mkguest failed"; exit 1; }

# run CHANNELS: one novacron migration of the current guest; checks its record.
run() {
	MIG_NC_CHANNELS=$1
	local what="$MIG_PROFILE, $MIG_WORKLOAD, plain"
	[ "$1" -gt 0 ] && what="$MIG_PROFILE, $MIG_WORKLOAD, multifd x$1"
	mig_run novacron
	local rc=$? rec
	rec=$(tail -1 "$MIG_RESULTS")
	local sent
	# What the sending appliance put on the wire (HDE makes it less than the RAM).
	sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("wire_bytes", 0))' \
		"$MIG_LAST_STATUS" 2>/dev/null)
	field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$rec" "$1"; }
	check "$what: novactl migrate completed" "[ '$(field total_ms)' != None ]"
	check "$what: stream digests equal at both appliances" "[ '$(field digest_ok)' = True ]"
	check "$what: the paused destination holds the source's RAM" "[ '$(field ram_equal)' = True ]"
	check "$what: the heartbeat goes on after cont, nothing corrupt" "[ '$(field guest_ok)' = True ]"
	check "$what: the router counted what the sending appliance sent (${sent:-?} bytes): $(field wire_bytes)" \
		"[ '$(field wire_bytes)' != None ] && [ ${sent:-0} -gt 0 ] && [ $(field wire_bytes) -ge ${sent:-1} ]"
	# From the source's STOP to the destination holding everything: what the
	# guest waits for (QEMU's own downtime ends when the source has written).
	check "$what: end-to-end downtime measured: $(field downtime_e2e_ms) ms" \
		"python3 -c 'import sys; e, t = $(field downtime_e2e_ms), $(field total_ms); sys.exit(0 if e is not None and t is not None and 0 < e <= t else 1)'"
	# The wall clock from before novactl migrate to the destination's
	# "completed" holds QEMU's own total (which starts at its migrate command).
	check "$what: wall-clock time measured: $(field wall_ms) ms" \
		"python3 -c 'import sys; w, t = $(field wall_ms), $(field total_ms); sys.exit(0 if w is not None and t is not None and w >= t else 1)'"
	echo "#   wall $(field wall_ms) ms, total $(field total_ms) ms (QEMU's), downtime $(field downtime_ms) ms (QEMU's), $(field downtime_e2e_ms) ms end to end"
	return $rc
}

echo "# lan10g, idle guest"
if mig_up lan10g && mig_guest idle; then
	run 0
	[ -n "$MIG_CUR" ] && run 4
else
	not_ok "lan10g: the appliances and the guest come up"
fi
mig_down

echo "# wan1g, guest dirtying 20 MB/s"
if mig_up wan1g && mig_guest dirty20; then
	run 0
	[ -n "$MIG_CUR" ] && run 4
else
	not_ok "wan1g: the appliances and the guest come up"
fi
mig_down

echo "# $(($(date +%s) - t_start)) s"
echo "1..$checks"
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
