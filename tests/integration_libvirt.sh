#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# integration_libvirt: live migration through libvirt between two "hosts" on
# one machine. tools/wan (lan10g) makes host namespaces A and B; each gets a
# libvirtd of its own (tests/lib_libvirt.sh: own mount namespace, config,
# runtime dirs, host UUID). A TCG domain runs on A and moves to B with
# `virsh migrate --live --p2p ... --migrateuri unix:///PATH`, once plain and
# once with --parallel --parallel-connections 4, then twice more through
# cp_libvirt (the control plane's backend, driven by the lv_migrate
# harness). The migration stream crosses the emulated network through a byte
# relay (socat: PATH on A -> TCP 10.77.0.1 -> 10.77.0.2 -> PATH on B), which
# the NovaCron appliances will replace. Checked each time: the domain runs on
# B (QMP says running; with a kernel, its console keeps printing) and is gone
# from A, and the relay carried one connection (plain) or five (4 channels +
# the main one). Then the refusals and failures: an unreachable destination,
# a second migration of a VM already migrating, an abort mid-migration, a
# source libvirtd that stops answering mid-migration (keepalive ends the
# wait) and a connect to it; the VM keeps running on A each time. Last, the hosts stop and leave nothing.
#
# The domains boot tools/mkguest's guest (kernel + initramfs, its workload
# filling 64 MiB, then dirtying 2 MB/s (NC_LV_DIRTY_MBPS), checking its
# pages against their checksums and printing a heartbeat) when tools/mkguest
# exists, or the NC_GUEST_KERNEL and NC_GUEST_INITRD given;
# NC_GUEST_KERNEL=none: firmware only (SeaBIOS finding no disk).
set -uo pipefail

B=${NC_BUILD:?}
S=${NC_SOURCE:?}
export WANEM=$B/tools/wanem/wanem
WAN=$S/tools/wan
LVM=$B/tests/lv_migrate
wan_name=${NC_LV_WAN:-lv}
kernel=${NC_GUEST_KERNEL:-}
dirty=${NC_LV_DIRTY_MBPS:-2} # the guest's dirtying rate, MB/s
initrd=${NC_GUEST_INITRD:-}
if [ -z "$kernel" ] && [ -x "$S/tools/mkguest" ]; then
	mapfile -t guest < <("$S/tools/mkguest") || true
	kernel=${guest[0]:-}
	initrd=${guest[1]:-}
	if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then
		echo "Bail out! tools/mkguest gave no kernel and initrd: ${guest[*]:-nothing}"
		exit 1
	fi
fi
[ "$kernel" != none ] || kernel="" initrd=""

work=$(mktemp -d /tmp/nc-lv.XXXXXX)
# shellcheck source=tests/lib_libvirt.sh
source "$S/tests/lib_libvirt.sh"
sock=$LV_MIGDIR/vm.sock
port=$((20000 + $$ % 20000))
relay_a=
relay_b=
checks=0
failures=0
t_start=$(date +%s.%N)

relay_stop() {
	local p
	for p in $relay_a $relay_b; do lv_stop_pid "$p" 3; done
	for p in $relay_a $relay_b; do wait "$p" 2>/dev/null; done
	relay_a="" relay_b=""
}
cleanup() {
	set +e
	relay_stop
	libvirt_host_stop
	"$WAN" down --name "$wan_name" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() {
	checks=$((checks + 1)); failures=$((failures + 1))
	echo "not ok $checks - $*"
}
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# contains DESCRIPTION NEEDLE: $out must contain NEEDLE
contains() {
	if grep -qF -- "$2" <<<"$out"; then ok "$1"; else
		not_ok "$1: no '$2' in:"; echo "$out" | sed 's/^/#   /'
	fi
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
now() { date +%s.%N; }
bail() { echo "Bail out! $*"; exit 1; }

# The relay (tests/lv_relay.py; it keeps the order of connections, which
# multifd needs): on B, TCP 10.77.0.2:port to the destination QEMU's socket
# at $sock (in B's mount namespace); on A, a listener at $sock to that port.
relay_start() {
	rm -f "$work/relay-a.log" "$work/relay-b.log"
	libvirt_spawn b python3 "$S/tests/lv_relay.py" "tcp:10.77.0.2:$port" "unix:$sock" \
		2>"$work/relay-b.log"
	relay_b=$lv_spawned
	libvirt_spawn a python3 "$S/tests/lv_relay.py" "unix:$sock" "tcp:10.77.0.2:$port" \
		2>"$work/relay-a.log"
	relay_a=$lv_spawned
	for _ in $(seq 200); do
		grep -q 'listening' "$work/relay-a.log" 2>/dev/null &&
			grep -q 'listening' "$work/relay-b.log" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
relay_conns() { grep -c 'accepted$' "$work/relay-$1.log" 2>/dev/null; }
# Bytes A -> B through the relay (all connections; up to 5 s for each of the
# expected N to have logged its total).
relay_bytes() {
	for _ in $(seq 50); do
		[ "$(grep -c ' done ' "$work/relay-a.log")" -ge "$1" ] && break
		sleep 0.1
	done
	awk '/ done / { s += $(NF - 1) } END { print s + 0 }' "$work/relay-a.log"
}

define_start() { # define_start DOM: define and start DOM on A (with a kernel: booted)
	libvirt_domain_xml "$1" "$kernel" "$initrd" "console=ttyS0 panic=-1 nc.dirty_mbps=$dirty" \
		>"$work/$1.xml"
	libvirt_virsh a define "$work/$1.xml" >/dev/null && libvirt_virsh a start "$1" >/dev/null ||
		return 1
	[ -n "$kernel" ] || return 0
	# The guest's workload says when it has filled its memory (tools/mkguest).
	for _ in $(seq 1200); do
		grep -q 'nc: filled' "$(serial a "$1")" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# $1: no 'nc: filled' on its console after 120 s:"
	tail -n 5 "$(serial a "$1")" | sed 's/^/#   /'
	return 1
}
state_on() { libvirt_virsh "$1" domstate "$2" 2>/dev/null | sed -n 1p; }
listed_on() { libvirt_virsh "$1" list --all --name 2>/dev/null | grep -x "$2" >/dev/null; }
qmp_running() { # qmp_running HOST DOM: QEMU itself says the VM runs
	libvirt_virsh "$1" qemu-monitor-command "$2" '{"execute":"query-status"}' 2>/dev/null |
		grep '"running":true' >/dev/null
}
serial() { echo "$work/lv-$1/root/var/log/libvirt/qemu/$2.serial"; }
# With a kernel: the console on B keeps growing after the migration.
console_moves() {
	local f s0
	f=$(serial b "$1")
	s0=$(stat -c %s "$f" 2>/dev/null || echo 0)
	for _ in $(seq 100); do
		[ "$(stat -c %s "$f" 2>/dev/null || echo 0)" -gt "$s0" ] && return 0
		sleep 0.1
	done
	return 1
}
# The destination's record of the incoming migration: "total_ms downtime_ms".
dest_job() {
	libvirt_virsh b domjobinfo --completed "$1" 2>/dev/null | awk '
		/^Time elapsed:/ { t = $3 } /^Total downtime:/ { d = $3 }
		END { printf "%s %s", t ? t : "?", d ? d : "?" }'
}

# after_migration DOM CONNS: the checks every good migration must pass.
after_migration() {
	local dom=$1 conns=$2
	check "$dom: running on B" [ "$(state_on b "$dom")" = running ]
	check "$dom: QEMU on B says running" qmp_running b "$dom"
	check "$dom: gone from A" eval "! listed_on a $dom"
	check "$dom: defined on B (persistent)" eval \
		"libvirt_virsh b dominfo $dom | grep -E '^Persistent: +yes' >/dev/null"
	check "$dom: relay A accepted $conns connection(s) (got $(relay_conns a))" \
		[ "$(relay_conns a)" = "$conns" ]
	check "$dom: relay B accepted $conns connection(s) (got $(relay_conns b))" \
		[ "$(relay_conns b)" = "$conns" ]
	if [ -n "$kernel" ]; then
		check "$dom: its console on B keeps going" console_moves "$dom"
		check "$dom: QEMU's RAM on B is $LV_MEM_KIB KiB (nc.ram)" libvirt_ram_ok b "$dom"
		if grep -q 'Kernel panic\|corrupt page' "$(serial b "$dom")"; then
			not_ok "$dom: no panic or corrupt page on B's console; it says:"
			grep -m1 -B12 -A4 'Kernel panic\|corrupt page' "$(serial b "$dom")" | sed 's/^/#   /'
		else
			ok "$dom: no panic or corrupt page on B's console"
		fi
	fi
	# Done with it: keep the machine's two cores for what follows.
	libvirt_virsh b destroy "$dom" >/dev/null 2>&1
	libvirt_virsh b undefine "$dom" >/dev/null 2>&1
}

report=()
# virsh_migrate DOM LABEL [VIRSH OPTIONS]: one migration with virsh.
virsh_migrate() {
	local dom=$1 label=$2 t0 t1 conns=1
	shift 2
	[[ " $* " == *" --parallel "* ]] && conns=5
	check "$dom: defined and started on A" define_start "$dom"
	check "$dom: relay up" relay_start
	t0=$(now)
	out=$(libvirt_virsh a migrate --live --p2p --persistent --undefinesource "$@" "$dom" \
		"$(libvirt_uri b)" --migrateuri "unix://$sock" 2>&1)
	local rc=$?
	t1=$(now)
	if [ $rc -eq 0 ]; then ok "$dom: virsh migrate $label"; else
		not_ok "$dom: virsh migrate $label (exit $rc)"; echo "$out" | sed 's/^/#   /'
	fi
	local job
	job=$(dest_job "$dom")
	after_migration "$dom" "$conns"
	report+=("$label (virsh): $(secs "$t0" "$t1") s; B says total/downtime ms: $job; relay A->B $(relay_bytes "$conns") bytes")
	relay_stop
}

# cp_migrate DOM LABEL [LV_MIGRATE OPTIONS]: one migration through cp_libvirt.
cp_migrate() {
	local dom=$1 label=$2 t0 t1 conns=1
	shift 2
	[[ " $* " == *" --parallel "* ]] && conns=5
	check "$dom: defined and started on A" define_start "$dom"
	check "$dom: relay up" relay_start
	t0=$(now)
	out=$("$LVM" --from "$(libvirt_uri a)" --to "$(libvirt_uri b)" --domain "$dom" \
		--migrate-uri "unix://$sock" --persist --undefine-source "$@" 2>&1)
	local rc=$?
	t1=$(now)
	if [ $rc -eq 0 ]; then ok "$dom: cp_libvirt migrate $label"; else
		not_ok "$dom: cp_libvirt migrate $label (exit $rc)"
	fi
	echo "$out" | sed 's/^/#   /' | grep -v '^#   progress' | tail -n 5
	contains "$dom: cp_libvirt reports done, running on B" "state=done"
	contains "$dom: cp_libvirt saw the destination running" "dest=running"
	contains "$dom: cp_libvirt saw progress" "progress elapsed_ms="
	local line
	line=$(grep '^result' <<<"$out")
	after_migration "$dom" "$conns"
	report+=("$label (cp_libvirt): $(secs "$t0" "$t1") s; ${line#result }; relay A->B $(relay_bytes "$conns") bytes")
	relay_stop
}

echo "# work dir $work, wan $wan_name, kernel: ${kernel:-none}"
[ -x "$LVM" ] || bail "no $LVM (build first)"
"$WAN" up lan10g --name "$wan_name" >/dev/null 2>&1 || bail "tools/wan up lan10g --name $wan_name failed"
libvirt_host_start a "$wan_name-a" || bail "libvirt host A did not start"
libvirt_host_start b "$wan_name-b" || bail "libvirt host B did not start"
t_up=$(now)
echo "# two libvirt hosts up in $(secs "$t_start" "$t_up") s (wan included)"

check "A and B have different host UUIDs" \
	[ "$(cat "$work/lv-a/uuid")" != "$(cat "$work/lv-b/uuid")" ]
out=$(libvirt_virsh a capabilities 2>&1)
contains "A reports its own host UUID" "<uuid>$(cat "$work/lv-a/uuid")</uuid>"
check "A runs in the A namespace (10.77.0.1)" eval \
	"libvirt_exec a ip -4 -br addr | grep 10.77.0.1/ >/dev/null"
check "A has its own /var/lib/libvirt" eval \
	"[ \"\$(libvirt_exec a stat -c %i /var/lib/libvirt)\" = \"\$(stat -c %i $work/lv-a/root/var/lib/libvirt)\" ]"
check "A and B see different $LV_MIGDIR" eval \
	"libvirt_exec a touch $LV_MIGDIR/a-was-here && ! libvirt_exec b test -e $LV_MIGDIR/a-was-here"
rm -f "$work/lv-a/mig/a-was-here"

d=nclv$$
virsh_migrate "$d-plain" plain
virsh_migrate "$d-par" "parallel 4" --parallel --parallel-connections 4
cp_migrate "$d-cp" plain
cp_migrate "$d-cppar" "parallel 4" --parallel 4

# Refusals and failures: the VM stays where it was, running.
dom=$d-stay
check "$dom: defined and started on A" define_start "$dom"
out=$("$LVM" --from "$(libvirt_uri a)" --to "qemu+unix:///system?socket=$work/nowhere/sock" \
	--domain "$dom" --migrate-uri "unix://$sock" 2>&1)
rc=$?
check "unreachable destination: lv_migrate fails (exit $rc)" [ $rc -eq 1 ]
contains "unreachable destination: libvirt's reason" "$work/nowhere/sock"
check "unreachable destination: $dom still running on A" [ "$(state_on a "$dom")" = running ]

out=$("$LVM" --from "$(libvirt_uri a)" --to "$(libvirt_uri b)" --domain "$d-nosuch" 2>&1)
rc=$?
check "unknown domain: refused at start (exit $rc)" [ $rc -eq 2 ]
contains "unknown domain: says so" "start rc=-2 err=domain '$d-nosuch'"

# A migration held up (relay A stopped with SIGSTOP: the source's stream
# waits in A's socket buffers): a second start of the same domain is refused
# while it runs; then it is aborted mid-way.
check "relay up" relay_start
kill -STOP "$relay_a"
out=$("$LVM" --from "$(libvirt_uri a)" --to "$(libvirt_uri b)" --domain "$dom" \
	--migrate-uri "unix://$sock" --bandwidth 100 --try-second --abort-after-ms 300 \
	--interval-ms 100 --timeout-s 60 2>&1)
rc=$?
kill -CONT "$relay_a"
echo "$out" | grep -v '^progress' | sed 's/^/#   /'
check "aborted migration: lv_migrate reports failure (exit $rc)" [ $rc -eq 1 ]
contains "second migration of the same VM: refused, busy" "second rc=-16 err=domain '$dom' has a job running"
contains "abort: accepted" "abort rc=0"
contains "aborted migration: ends canceled" "result rc=-125 state=failed"
result_says_aborted() { grep '^result' <<<"$out" | grep -E 'err=.*aborted' >/dev/null; }
check "aborted migration: its error says aborted" result_says_aborted
check "aborted migration: $dom still running on A" [ "$(state_on a "$dom")" = running ]
check "aborted migration: QEMU on A says running" qmp_running a "$dom"
check "aborted migration: nothing left on B" eval "! listed_on b $dom"
relay_stop

# A libvirtd that stops answering mid-migration (SIGSTOP once the job is
# seen, the stream held up by a stopped relay): with keepalive every 1 s, 2
# probes, the migration fails saying the connection is lost, within seconds,
# instead of waiting for ever; a connect to it meanwhile is given up on.
# Then libvirtd goes on, the relay goes, and the VM is still running on A.
libvirt_job_none() { libvirt_virsh a domjobinfo "$dom" 2>/dev/null | grep -E 'Job type: +None' >/dev/null; }
lvd_a=${lv_daemon[a]}
check "relay up" relay_start
kill -STOP "$relay_a"
t0=$(now)
out=$("$LVM" --from "$(libvirt_uri a)" --to "$(libvirt_uri b)" --domain "$dom" \
	--migrate-uri "unix://$sock" --keepalive 1:2 --stop-pid "$lvd_a" --interval-ms 100 \
	--timeout-s 60 2>&1)
rc=$?
t1=$(now)
echo "$out" | grep -v '^progress' | sed 's/^/#   /'
check "wedged libvirtd: lv_migrate reports failure (exit $rc)" [ $rc -eq 1 ]
contains "wedged libvirtd: it was stopped mid-migration" "stopped pid=$lvd_a"
contains "wedged libvirtd: the migration fails, connection lost" "result rc=-104 state=failed"
contains "wedged libvirtd: the error says why" "lost the connection to libvirtd"
wedged=$(sed -n 's/^wedged_ms=//p' <<<"$out")
check "wedged libvirtd: given up on ${wedged:-?} ms after it stopped (keepalive 1 s x 3; < 15000)" \
	[ -n "$wedged" ] && [ "${wedged:-99999}" -lt 15000 ]
t0=$(now)
out=$("$LVM" --from "$(libvirt_uri a)" --to "$(libvirt_uri b)" --domain "$dom" \
	--open-timeout-ms 1000 2>&1)
rc=$?
t1=$(now)
echo "$out" | sed 's/^/#   /'
check "wedged libvirtd: a connect is refused (exit $rc)" [ $rc -eq 2 ]
contains "wedged libvirtd: the connect gives up, saying so" "start rc=-110 err=cannot connect to"
contains "wedged libvirtd: ... after its time" "libvirtd did not answer in 1000 ms"
check "wedged libvirtd: the connect returned in $(secs "$t0" "$t1") s (< 10)" \
	awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 10) }'
kill -CONT "$lvd_a"
relay_stop
for _ in $(seq 1 60); do libvirt_job_none && break; sleep 0.5; done
check "wedged libvirtd: once it goes on, its job ends" libvirt_job_none
check "wedged libvirtd: $dom still running on A" [ "$(state_on a "$dom")" = running ]
check "wedged libvirtd: QEMU on A says running" qmp_running a "$dom"
check "wedged libvirtd: nothing left on B" eval "! listed_on b $dom"

# The hosts stop and leave nothing behind.
holders="${lv_holder[*]} ${lv_daemon[*]}"
dirs=("$work/lv-a" "$work/lv-b")
libvirt_host_stop
left=
for p in $holders; do kill -0 "$p" 2>/dev/null && left+=" $p"; done
check "hosts stopped: no holder or libvirtd left${left}" [ -z "$left" ]
check "hosts stopped: no QEMU of this test left" eval "! pgrep -f 'guest=$d' >/dev/null"
check "hosts stopped: their directories are gone" eval "[ ! -e ${dirs[0]} ] && [ ! -e ${dirs[1]} ]"

t_end=$(now)
echo "# migrations (wall time of the command; B's record of the incoming job):"
for r in "${report[@]}"; do echo "#   $r"; done
echo "# integration_libvirt took $(secs "$t_start" "$t_end") s"
echo "1..$checks"
[ "$failures" -eq 0 ] || { echo "# $failures of $checks checks failed"; exit 1; }
