#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# integration_libvirt_appliance: a libvirt domain live-migrated through two
# NovaCron appliances, driven by `novactl migrate libvirt:DOMAIN --to HOST`.
# tools/wan (lan10g) makes host namespaces A and B; each is a libvirt host of
# its own (tests/lib_libvirt.sh: libvirtd with its own mount namespace,
# config, runtime directories and host UUID), and each runs a dataplane (an
# af_packet port on a0 / b0) and a control plane INSIDE that host's mount
# and network namespaces: libvirt uses one migration socket path on both
# hosts ($LV_MIGDIR/ID.sock), where the source appliance listens in A and the
# destination QEMU listens in B, so each appliance must see its own host's
# directory there. The domain is a TCG guest booting tools/mkguest's kernel
# and initramfs (its workload filling memory, then dirtying 2 MB/s, checking
# its pages against their checksums and printing a heartbeat). Its RAM is
# 262136 KiB, not a multiple of 256 KiB, so that QEMU 7.2 under TCG does not
# lose dirty pages (../shared/DESIGN.md; libvirt_domain_xml gives QEMU that
# size past libvirt's rounding to whole MiB).
#   1. plain and with --channels 4 (libvirt --parallel, 4 connections + the
#      main one, one AMST stream each): novactl exits 0, the stream digests
#      are equal at both appliances (digest_ok), the domain runs on B and is
#      gone from A, the guest's heartbeat continues on B with no corrupt page;
#   2. refusals, the domain running on A after each: an unknown domain, one
#      that is not running, a TCG domain of libvirt's own RAM size (QEMU 7.2
#      would lose its dirty pages: controlplane.tcg_guard), an unknown host,
#      a destination whose libvirtd refuses the domain (B has another domain
#      of that name), a second migration of a domain already migrating;
#   3. the destination's dataplane killed mid-migration: novactl fails and
#      says why, the domain keeps running on A (its heartbeat too), and
#      nothing is left on B.
set -uo pipefail

B=${NC_BUILD:?}
S=${NC_SOURCE:?}
DP=$B/dataplane/novacron-dp
CP=$B/controlplane/novacron-cp
CTL=$B/tools/novactl
export WANEM=$B/tools/wanem/wanem
WAN=$S/tools/wan
wan=${NC_LVA_WAN:-lva}
PSK=integration-test-psk-0123456789
PEER_PSK=peer-link-test-key-0123456789
# The streams' codec: NC_LVA_CODEC (hde or none; default novactl's, HDE).
codec=()
[ -z "${NC_LVA_CODEC:-}" ] || codec=(--codec "$NC_LVA_CODEC")
CMDLINE="console=ttyS0 panic=-1 mitigations=off edd=off loglevel=4 nc.fill_mb=48 nc.dirty_mbps=2"

work=$(mktemp -d /tmp/nc-lva.XXXXXX)
pids=()
# shellcheck source=tests/lib_appliance.sh
. "$S/tests/lib_appliance.sh"
# shellcheck source=tests/lib_libvirt.sh
. "$S/tests/lib_libvirt.sh"
checks=0
failures=0
t_start=$(date +%s.%N)
prefixes=("${wan}A$$" "${wan}B$$")

cleanup() {
	set +e
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do lv_stop_pid "$p" 5; done
	# Not a bare wait: the libvirt hosts' holders run until libvirt_host_stop.
	wait "${pids[@]}" 2>/dev/null
	libvirt_host_stop
	"$WAN" down --name "$wan" >/dev/null 2>&1
	for p in "${prefixes[@]}"; do
		rm -rf "/var/run/dpdk/$p"
		rm -f "/dev/hugepages/$p"map_* # a killed dataplane leaves them
	done
	[ -n "${NC_LVA_KEEP:-}" ] && echo "# kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $*"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# says DESCRIPTION NEEDLE: $out holds NEEDLE
says() {
	if grep -qF -- "$2" <<<"$out"; then ok "$1"; else
		not_ok "$1: no '$2' in:"
		sed 's/^/#   /' <<<"$out"
	fi
}
bail() { echo "Bail out! $*"; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get(sys.argv[1]))' "$1"; }

# config NAME PREFIX LCORES IFACE AMST_IP HOST PEER_LISTEN PEER LIBVIRT_URI
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
  session_memory_mb: 64
controlplane:
  dp_timeout_ms: 3000
  host_name: $6
  peer_listen: "$7"
  peers:
    - "$8"
  peer_psk: $PEER_PSK
  libvirt_uri: "$9"
  libvirt_socket_dir: $LV_MIGDIR
EOF
}

# appliance_in HOST NAME: NAME's dataplane and control plane inside libvirt
# host HOST's mount and network namespaces; sets NAME_dp and NAME_cp.
appliance_in() {
	local h=$1 n=$2
	libvirt_spawn "$h" "$DP" --config "$work/$n.yaml" </dev/null >>"$work/$n.dp.log" 2>&1
	pids+=("$lv_spawned")
	eval "${n}_dp=$lv_spawned"
	appliance_wait "$n" --dp || { appliance_failed "$n"; return 1; }
	libvirt_spawn "$h" "$CP" --config "$work/$n.yaml" </dev/null >>"$work/$n.cp.log" 2>&1
	pids+=("$lv_spawned")
	eval "${n}_cp=$lv_spawned"
	appliance_wait "$n" || { appliance_failed "$n"; return 1; }
}

serial() { echo "$work/lv-$1/root/var/log/libvirt/qemu/$2.serial"; }
last_hb() { tr -d '\r' <"$(serial "$1" "$2")" 2>/dev/null | awk '/^hb [0-9]+$/ {n = $2} END {print n + 0}'; }
state_on() { libvirt_virsh "$1" domstate "$2" 2>/dev/null | sed -n 1p; }
listed_on() { libvirt_virsh "$1" list --all --name 2>/dev/null | grep -qx "$2"; }
qmp_running() { # qmp_running HOST DOM: QEMU itself says the VM runs
	libvirt_virsh "$1" qemu-monitor-command "$2" '{"execute":"query-status"}' 2>/dev/null |
		grep -q '"running":true'
}
# hb_after HOST DOM N: the guest on HOST prints a heartbeat above N within 20 s.
hb_after() {
	for _ in $(seq 200); do
		[ "$(last_hb "$1" "$2")" -gt "$3" ] && return 0
		sleep 0.1
	done
	echo "# $2 on $1: no heartbeat above $3 (last $(last_hb "$1" "$2"))"
	return 1
}
no_corrupt() { ! grep -q 'corrupt page\|Kernel panic' "$(serial "$1" "$2")"; }

define_start() { # define_start DOM: define and boot DOM on A, until its fill is done
	libvirt_domain_xml "$1" "$kernel" "$initrd" "$CMDLINE" >"$work/$1.xml"
	libvirt_virsh a define "$work/$1.xml" >/dev/null && libvirt_virsh a start "$1" >/dev/null ||
		return 1
	for _ in $(seq 1200); do
		grep -q '^hb 1' <(tr -d '\r' <"$(serial a "$1")") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# $1: no heartbeat on its console after 120 s:"
	tail -n 5 "$(serial a "$1")" | sed 's/^/#   /'
	return 1
}
# Both appliances drop the migration's sessions (a clean close may still be
# under way when novactl returns: up to 10 s).
sessions_gone() {
	for _ in $(seq 100); do
		! ctl A --json session list | grep -q mig- && ! ctl B --json session list | grep -q mig- &&
			return 0
		sleep 0.1
	done
	ctl A session list | sed 's/^/#   A: /'
	ctl B session list | sed 's/^/#   B: /'
	return 1
}

report=()
# migrate_ok DOM CHANNELS: a migration that must succeed, and its checks.
migrate_ok() {
	local dom=$1 ch=$2 what=plain t0 t1 rc hb
	[ "$ch" -gt 0 ] && what="parallel $ch"
	check "$what: $dom defined and booted on A" define_start "$dom" || return 1
	t0=$(now)
	ctl A migrate "libvirt:$dom" --to host-b --channels "$ch" "${codec[@]}" >"$work/$dom.out" 2>&1
	rc=$?
	t1=$(now)
	sed 's/^/#   /' "$work/$dom.out"
	check "$what: novactl migrate exits 0 (got $rc)" [ "$rc" -eq 0 ]
	ctl A --json migrate status "libvirt:$dom" >"$work/$dom.json"
	check "$what: completed, backend libvirt, digest_ok, $((ch + 1)) streams with equal digests" \
		python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
assert d["state"] == "completed" and d["backend"] == "libvirt" and d["digest_ok"] is True, d
assert len(d["streams"]) == n and all(s["equal"] and s["src_bytes"] > 0 for s in d["streams"]), d
assert d["source_vm"] == "gone" and d["total_ms"] > 0 and d["wire_bytes"] > 0, d' \
		"$work/$dom.json" "$((ch + 1))"
	hb=$(last_hb a "$dom")
	check "$what: $dom runs on B" [ "$(state_on b "$dom")" = running ]
	check "$what: QEMU on B says running" qmp_running b "$dom"
	check "$what: $dom is gone from A" eval "! listed_on a $dom"
	check "$what: the heartbeat goes on on B (after hb $hb on A)" hb_after b "$dom" "$hb"
	# The digests above prove the appliances carried every byte QEMU wrote;
	# the guest's own checksums prove the VM got every page it wrote.
	check "$what: QEMU's RAM on B is $LV_MEM_KIB KiB (nc.ram)" libvirt_ram_ok b "$dom"
	if no_corrupt b "$dom"; then
		ok "$what: no corrupt page or panic on B"
	else
		not_ok "$what: no corrupt page or panic on B; the guest on B says:"
		grep -m5 'corrupt page\|Kernel panic' "$(serial b "$dom")" | sed 's/^/#   /'
	fi
	check "$what: both sessions are gone" sessions_gone
	report+=("$what: $(secs "$t0" "$t1") s end to end; total $(field total_ms <"$work/$dom.json") ms, downtime $(field downtime_ms <"$work/$dom.json") ms, wire $(field wire_bytes <"$work/$dom.json") bytes")
	# Done with it: keep the two cores for what follows.
	libvirt_virsh b destroy "$dom" >/dev/null 2>&1
	libvirt_virsh b undefine "$dom" >/dev/null 2>&1
}

# still_on_a DOM WHAT: after a failure, the domain runs on A as before.
still_on_a() {
	local hb
	hb=$(last_hb a "$1")
	check "$2: $1 still runs on A" [ "$(state_on a "$1")" = running ]
	check "$2: QEMU on A says running" qmp_running a "$1"
	check "$2: its heartbeat goes on on A" hb_after a "$1" "$hb"
}

# ---- set up ----
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
[ "${free:-0}" -ge 256 ] || bail "needs 256 free hugepages (have ${free:-0}): run tools/novacron setup"
[ -x "$S/tools/mkguest" ] || bail "no tools/mkguest"
mapfile -t guest < <("$S/tools/mkguest") || true
kernel=${guest[0]:-}
initrd=${guest[1]:-}
[ -f "$kernel" ] && [ -f "$initrd" ] || bail "tools/mkguest gave no kernel and initrd: ${guest[*]:-nothing}"
echo "# work dir $work, wan $wan, guest $kernel"

"$WAN" up lan10g --name "$wan" >/dev/null 2>&1 || bail "tools/wan up lan10g --name $wan failed"
libvirt_host_start a "$wan-a" || bail "libvirt host A did not start"
libvirt_host_start b "$wan-b" || bail "libvirt host B did not start"
config A "${prefixes[0]}" "0-1" a0 10.77.0.11/24 host-a 10.77.0.1:7480 "host-b=10.77.0.2:7480" \
	"$(libvirt_uri a)"
config B "${prefixes[1]}" "0@1,1@0" b0 10.77.0.12/24 host-b 10.77.0.2:7480 "host-a=10.77.0.1:7480" \
	"$(libvirt_uri b)"
appliance_in a A || bail "appliance A did not start"
appliance_in b B || bail "appliance B did not start"
echo "# two libvirt hosts and two appliances up in $(secs "$t_start" "$(now)") s"
check "the appliances run in their hosts' mount namespaces" eval \
	"[ \"\$(readlink /proc/$A_dp/ns/mnt)\" = \"\$(readlink /proc/${lv_holder[a]}/ns/mnt)\" ] &&
	 [ \"\$(readlink /proc/$B_cp/ns/mnt)\" = \"\$(readlink /proc/${lv_holder[b]}/ns/mnt)\" ]"
check "peer link: both control planes healthy" eval "ctl A health >/dev/null && ctl B health >/dev/null"

d=nclva$$
echo "# 1. migrations through the appliances"
migrate_ok "$d-plain" 0
migrate_ok "$d-par" 4

echo "# 2. refusals: the domain stays on A, running"
dom=$d-stay
check "$dom defined and booted on A" define_start "$dom" || bail "no domain to refuse"
out=$(ctl A migrate "libvirt:$d-nosuch" --to host-b 2>&1)
rc=$?
echo "#   $out"
check "unknown domain: exit 1" [ $rc -eq 1 ]
says "unknown domain: says so" "no domain '$d-nosuch' on qemu+unix"
libvirt_domain_xml "$d-off" "$kernel" "$initrd" "$CMDLINE" >"$work/$d-off.xml"
libvirt_virsh a define "$work/$d-off.xml" >/dev/null
out=$(ctl A migrate "libvirt:$d-off" --to host-b 2>&1)
rc=$?
echo "#   $out"
check "a domain that is not running: exit 1" [ $rc -eq 1 ]
says "a domain that is not running: says so" "domain '$d-off' is not running (shutoff)"
# A domain whose RAM libvirt sizes (whole MiB, a multiple of 256 KiB): QEMU
# 7.2 under TCG would lose pages it dirties, so the control plane refuses it.
LV_OWN_RAM=0 libvirt_domain_xml "$d-tcg" >"$work/$d-tcg.xml"
libvirt_virsh a define "$work/$d-tcg.xml" >/dev/null && libvirt_virsh a start "$d-tcg" >/dev/null
out=$(ctl A migrate "libvirt:$d-tcg" --to host-b 2>&1)
rc=$?
echo "#   $out"
check "a TCG domain of libvirt's RAM size: exit 1" [ $rc -eq 1 ]
says "a TCG domain of libvirt's RAM size: says why" \
	"domain '$d-tcg' is not migrated: it runs under TCG on QEMU"
says "a TCG domain of libvirt's RAM size: names the size" "with 262144 KiB of RAM, a multiple of 256 KiB"
check "a TCG domain of libvirt's RAM size: still runs on A" [ "$(state_on a "$d-tcg")" = running ]
libvirt_virsh a destroy "$d-tcg" >/dev/null 2>&1
libvirt_virsh a undefine "$d-tcg" >/dev/null 2>&1
out=$(ctl A migrate "libvirt:$dom" --to host-zz 2>&1)
rc=$?
echo "#   $out"
check "unknown host: exit 1, says so" eval "[ $rc -eq 1 ] && grep -q 'unknown host' <<<\"\$out\""
# B's libvirtd has another domain of that name (another UUID): it refuses.
libvirt_virsh b define "$work/$dom.xml" >/dev/null
out=$(ctl A migrate "libvirt:$dom" --to host-b 2>&1)
rc=$?
sed 's/^/#   /' <<<"$out"
check "the destination refuses: exit 1" [ $rc -eq 1 ]
says "the destination refuses: libvirt's reason" "libvirt: migration failed"
says "the destination refuses: names the domain" "'$dom'"
still_on_a "$dom" "the destination refuses"
check "the destination refuses: B still has only its own (shut off) $dom" \
	[ "$(state_on b "$dom")" = "shut off" ]
check "the destination refuses: both sessions are gone" sessions_gone
libvirt_virsh b undefine "$dom" >/dev/null

echo "# 3. a second migration while one runs; the destination's dataplane dies mid-migration"
# codec none (unless NC_LVA_CODEC says otherwise): this part needs a slow
# migration that is still running when the failure comes, and HDE shrinks and
# reshapes the stream (as in integration_migrate's failure cases).
slow_codec=(--codec none)
[ -z "${NC_LVA_CODEC:-}" ] || slow_codec=("${codec[@]}")
ctl A migrate "libvirt:$dom" --to host-b --rate 8 "${slow_codec[@]}" >"$work/slow.out" 2>&1 &
mig=$!
w=0
for _ in $(seq 300); do
	w=$(ctl A --json migrate status "libvirt:$dom" 2>/dev/null | field wire_bytes)
	[ "${w:-None}" != None ] && [ "$w" -gt 2000000 ] && break
	sleep 0.1
done
echo "#   $w bytes on the wire"
out=$(ctl A migrate "libvirt:$dom" --to host-b 2>&1)
rc=$?
echo "#   $out"
check "a second migration of the same domain: exit 1" [ $rc -eq 1 ]
says "a second migration of the same domain: says so" "libvirt:$dom is already migrating"
kill -KILL "$B_dp"
wait "$mig"
rc=$?
sed 's/^/#   /' "$work/slow.out"
check "dataplane killed: novactl migrate fails (exit $rc)" [ $rc -eq 1 ]
check "dataplane killed: says why (the destination's dataplane)" \
	grep -q "the destination's dataplane is not running" "$work/slow.out"
ctl A --json migrate status "libvirt:$dom" >"$work/slow.json"
check "dataplane killed: the record says failed, source VM running" \
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); assert d["state"] == "failed" and d["source_vm"] == "running", d' \
	"$work/slow.json"
still_on_a "$dom" "dataplane killed"
check "dataplane killed: nothing left on B" eval "! listed_on b $dom"
check "dataplane killed: A's appliance is up" eval "kill -0 $A_dp && ctl A health >/dev/null"

echo "# migrations (novactl's wall time; the control plane's record):"
for r in "${report[@]}"; do echo "#   $r"; done
echo "# integration_libvirt_appliance took $(secs "$t_start" "$(now)") s"
echo "1..$checks"
[ "$failures" -eq 0 ] || { echo "# $failures of $checks checks failed"; exit 1; }
