# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
# lib_mig.sh: the migration topology shared by tests/integration_realguest.sh,
# bench/bench_migrate.sh and `tools/novacron demo` (sourced, bash).
#
# Host A and host B are the namespaces of `tools/wan up PROFILE --name NAME`
# (NAME-a, NAME-b); each runs an appliance (dataplane on an af_packet port and
# control plane, host names host-a and host-b, peers of each other; AMST's
# session memory and streams at their defaults, 512 MiB / 16: 16 MiB of buffer
# per stream and direction, more than a 1 Gbit/s x 50 ms path holds). Real
# guests (tools/mkguest, tests/lib_qemu.sh) run in them; a guest is migrated
# along a chain: the paused destination of one run, once checked and resumed,
# is the source of the next, so its host alternates A, B, A, ...
#
# The caller sets NC_BUILD and NC_SOURCE (or B and S) and calls mig_cleanup
# from its EXIT trap. Then:
#
#   mig_init NAME                  a work directory, MIG_* defaults
#   mig_up PROFILE                 tools/wan up PROFILE --name NAME, both appliances
#                                  (a qemu-* run stops them, a novacron run starts
#                                  them again: mig_appliances_down/_up)
#   mig_down                       guests, appliances, the namespaces
#   mig_guest WORKLOAD [HOST]      boot a guest in HOST (a), WORKLOAD idle or dirtyN
#                                  (N MB/s); it becomes the chain's current guest
#   mig_run SYSTEM                 migrate the current guest to a fresh paused
#                                  destination on the other host, check it three
#                                  ways, resume it; appends one JSON object (a
#                                  line) to $MIG_RESULTS. SYSTEM: novacron,
#                                  qemu-plain, qemu-multifd, qemu-multifd-zstd,
#                                  qemu-xbzrle. Returns 1 if a check failed.
#   mig_cleanup                    for the EXIT trap
# After a novacron run, MIG_LAST_STATUS is the file of its `migrate status --json`.
#
# Settings (environment or set after mig_init):
#   MIG_MEM_K (262136)        guest RAM in KiB: never a multiple of 256 KiB
#   MIG_FILL_MB (128)         MiB the workload fills
#   MIG_NC_CHANNELS (0)       novacron: multifd channels (0: plain precopy)
#   MIG_NC_ARGS ()            novacron: more `novactl migrate` options (e.g. --codec X)
#   MIG_QEMU_CHANNELS (4)     qemu-multifd*: channels
#   MIG_TTY (0)               1: novactl draws its progress bar on this terminal
#   MIG_TIMEOUT (600)         seconds a migration may take
#
# Each run's figures: total_ms and downtime_ms from QEMU's query-migrate,
# wire_bytes = frames in both directions counted by wanem at the router (in
# bytes, Ethernet header to end, lost frames included: they were sent) between
# a snapshot before the run and one taken after the counters were rewritten
# (every second) after the end. Checks: digest_ok (novacron: the XXH3-128 of
# every stream equal at both appliances), ram_equal (the paused destination's
# RAM equals the stopped source's, pmemsave, page by page), guest_ok (after
# `cont` the heartbeat goes on from the source's number and the guest finds no
# corrupt page).

MIG_S=${NC_SOURCE:-${S:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}}
MIG_B=${NC_BUILD:-${B:-$MIG_S/build}}
DP=$MIG_B/dataplane/novacron-dp
CP=$MIG_B/controlplane/novacron-cp
CTL=$MIG_B/tools/novactl
. "$MIG_S/tests/lib_appliance.sh"
. "$MIG_S/tests/lib_qemu.sh"

MIG_PSK=mig-appliance-psk-0123456789
MIG_PEER_PSK=mig-peer-link-key-0123456789
pids=()

mig_say() { echo "# $*" >&2; }

mig_init() {
	MIG_WAN=$1
	MIG_WORK=$(mktemp -d "/tmp/nc-$MIG_WAN.XXXXXX")
	work=$MIG_WORK
	QEMU_WORK=$MIG_WORK/q
	mkdir -p "$QEMU_WORK"
	MIG_RESULTS=${MIG_RESULTS:-$MIG_WORK/runs.jsonl}
	MIG_MEM_K=${MIG_MEM_K:-262136}
	MIG_FILL_MB=${MIG_FILL_MB:-128}
	MIG_NC_CHANNELS=${MIG_NC_CHANNELS:-0}
	MIG_QEMU_CHANNELS=${MIG_QEMU_CHANNELS:-4}
	MIG_TTY=${MIG_TTY:-0}
	MIG_TIMEOUT=${MIG_TIMEOUT:-600}
	MIG_SETTLE=${MIG_SETTLE:-0}
	[ -n "${MIG_NC_ARGS+x}" ] || MIG_NC_ARGS=()
	MIG_SEQ=0 MIG_CUR='' MIG_HOST='' MIG_PROFILE='' MIG_WORKLOAD=''
	MIG_PREFIX=${MIG_WAN}$$
}

# mig_link_mtu IFACE: the MTU of a0 or b0 in its host's namespace (1500 if it
# cannot be read): the appliances use the link's MTU, as kernel TCP does for
# QEMU's own migrations (9000 on lan10g).
mig_link_mtu() {
	local m
	m=$(ip -n "$MIG_WAN-${1%0}" -o link show "$1" 2>/dev/null | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
	echo "${m:-1500}"
}

# mig_config NAME LCORES IFACE AMST_IP HOST PEER_LISTEN PEER
mig_config() {
	mkdir -p "$work/$1"
	cat >"$work/$1.yaml" <<EOF
runtime:
  dir: $work/$1
dataplane:
  lcores: "$2"
  file_prefix: $MIG_PREFIX$1
  memory_mb: 256
  ports:
    - "af_packet:iface=$3"
amst:
  ip: $4
  psk: $MIG_PSK
  mtu: $(mig_link_mtu "$3")
  idle_timeout_ms: 3000
controlplane:
  dp_timeout_ms: 5000
  host_name: $5
  peer_listen: "$6"
  peers:
    - "$7"
  peer_psk: $MIG_PEER_PSK
  peer_timeout_ms: 5000
  peer_dests:
    - $MIG_WORK
EOF
}

mig_up() {
	local prof=$1
	"$MIG_S/tools/wan" up "$prof" --name "$MIG_WAN" >"$MIG_WORK/wan.log" 2>&1 ||
		{ mig_say "tools/wan up $prof failed: $(tail -3 "$MIG_WORK/wan.log")"; return 1; }
	MIG_PROFILE=$prof
	mig_appliances_up
}

# The appliances of both hosts (mig_up starts them; a QEMU-alone run stops them).
mig_appliances_up() {
	mig_config A "0-1" a0 10.77.0.11/24 host-a 10.77.0.1:7480 "host-b=10.77.0.2:7480"
	mig_config B "0@1,1@0" b0 10.77.0.12/24 host-b 10.77.0.2:7480 "host-a=10.77.0.1:7480"
	MIG_APPLIANCES=1
	appliance_start A "$MIG_WAN-a" && appliance_start B "$MIG_WAN-b" || return 1
	local _
	for _ in $(seq 50); do
		ctl A health >/dev/null 2>&1 && ctl B health >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	mig_say "the appliances are not healthy: $(ctl A health 2>&1 | tail -2)"
	return 1
}

mig_appliances_down() {
	appliance_stop A B
	MIG_APPLIANCES=0
	rm -rf "/var/run/dpdk/${MIG_PREFIX}A" "/var/run/dpdk/${MIG_PREFIX}B"
	rm -f "/dev/hugepages/${MIG_PREFIX}A"map_* "/dev/hugepages/${MIG_PREFIX}B"map_*
}

mig_down() {
	qemu_cleanup
	MIG_CUR=''
	mig_appliances_down
	"$MIG_S/tools/wan" down --name "$MIG_WAN" >/dev/null 2>&1
	return 0
}

mig_cleanup() {
	[ -n "${MIG_WORK:-}" ] || return 0
	mig_down
	local p
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ -n "${MIG_KEEP:-}" ]; then mig_say "kept $MIG_WORK"; else rm -rf "$MIG_WORK"; fi
	MIG_WORK=''
}

mig_other() { [ "$1" = a ] && echo b || echo a; }
mig_ip() { [ "$1" = a ] && echo 10.77.0.1 || echo 10.77.0.2; }
mig_upper() { [ "$1" = a ] && echo A || echo B; }

# mig_guest WORKLOAD [HOST]: boot the chain's first guest and wait for its heartbeat.
mig_guest() {
	local wl=$1 host=${2:-a} dirty=0 g
	case $wl in
	idle) ;;
	dirty[0-9]*) dirty=${wl#dirty} ;;
	*) mig_say "mig_guest: workload idle or dirtyN, not '$wl'"; return 1 ;;
	esac
	[ -z "$MIG_CUR" ] || qemu_stop "$MIG_CUR"
	MIG_SEQ=$((MIG_SEQ + 1))
	g=g$MIG_SEQ
	MIG_CUR='' MIG_WORKLOAD=$wl
	qemu_start "$g" --mem "$MIG_MEM_K" --fill "$MIG_FILL_MB" --dirty "$dirty" --seed "$MIG_SEQ" \
		--netns "$MIG_WAN-$host" --qmp2 "$QEMU_WORK/$g.cp.qmp" || return 1
	qemu_wait_ready "$g" 180 || return 1
	MIG_CUR=$g MIG_HOST=$host
	[ "$MIG_SETTLE" = 1 ] || return 0
	mig_settle
}

# mig_settle: migrate the current guest once, unrecorded, to a fresh QEMU on the
# same host over a UNIX socket, checked like every other migration (destination
# RAM equal to the source's, heartbeat on after cont). QEMU 7.2 takes longer to
# set up the first migration of a guest that has never migrated: its
# setup->active phase here was 0.9-1.1 s against 0.45 s for every later one,
# QEMU's own modes and NovaCron alike. A bench that starts each cell with one
# system would charge that system alone (MIG_SETTLE=1: bench migrate, demo).
mig_settle() {
	local src=$MIG_CUR dst
	MIG_SEQ=$((MIG_SEQ + 1))
	dst=g$MIG_SEQ
	mig_say "settling the guest: one unrecorded, checked migration $src -> $dst on host $MIG_HOST"
	qemu_start "$dst" --mem "$MIG_MEM_K" --incoming --netns "$MIG_WAN-$MIG_HOST" \
		--qmp2 "$QEMU_WORK/$dst.cp.qmp" || return 1
	if qemu_migrate "$src" "$dst" "unix:$MIG_WORK/$dst.settle.sock" --timeout "$MIG_TIMEOUT" &&
		qemu_compare_ram "$src" "$dst" && qemu_cont_check "$dst" "$src"; then
		qemu_stop "$src"
		MIG_CUR=$dst
		return 0
	fi
	mig_say "mig_settle: the settling migration $src -> $dst failed"
	qemu_stop "$dst"
	return 1
}

# mig_wire: bytes of frames that entered the router, both directions.
mig_wire() {
	"$MIG_S/tools/wan" stats --name "$MIG_WAN" 2>/dev/null |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(l["in_bytes"] for l in d["links"]))'
}

# mig_wire_after T: the counters once wanem has rewritten them after time T (date +%s.%N).
mig_wire_after() {
	local t=$1 _
	for _ in $(seq 30); do
		sleep 0.2
		[ "$(python3 -c "import os,sys; print(int(os.path.getmtime(sys.argv[1]) > $t + 0.05))" \
			"${NC_WAN_RUN:-/run/novacron-wan}/$MIG_WAN/stats.json" 2>/dev/null)" = 1 ] && break
	done
	mig_wire
}

# mig_settings NAME CHANNELS: the migration settings of a novacron run on one QEMU
# (the control plane sets multifd on the source; everything else is set here
# so a guest that was another run's destination keeps nothing of it).
mig_settings() {
	local ch=$2 mf=off
	[ "$ch" -gt 0 ] && mf=on
	qemu_set_caps "$1" multifd=$mf xbzrle=off events=on || return 1
	local p='"downtime-limit": 300, "multifd-compression": "none"'
	[ "$ch" -gt 0 ] && p+=", \"multifd-channels\": $ch"
	qemu_set_params "$1" "{$p}"
}

# mig_novacron SRC DST SRC_HOST DST_HOST: sets r_total r_down r_digest.
mig_novacron() {
	local src=$1 dst=$2 sh=$3 dh=$4 ch=$MIG_NC_CHANNELS rc
	local in=$MIG_WORK/$dst.in.sock X
	X=$(mig_upper "$sh")
	mig_settings "$src" "$ch" && mig_settings "$dst" "$ch" || return 1
	qemu_qmp "$dst" migrate-incoming "{\"uri\": \"unix:$in\"}" >/dev/null || return 1
	local args=("$QEMU_WORK/$src.cp.qmp" --to "host-$dh" --dest "unix:$in")
	[ "$ch" -gt 0 ] && args+=(--channels "$ch")
	args+=("${MIG_NC_ARGS[@]}")
	MIG_T0=$(date +%s.%N) # wall_ms starts here (mig_run)
	if [ "$MIG_TTY" = 1 ]; then
		ctl "$X" migrate "${args[@]}"
		rc=$?
	else
		ctl "$X" migrate "${args[@]}" >"$MIG_WORK/$src.novactl" 2>&1
		rc=$?
		tail -2 "$MIG_WORK/$src.novactl" | sed 's/^/#   /' >&2
	fi
	MIG_LAST_STATUS=$MIG_WORK/$src.status.json
	ctl "$X" --json migrate status "$QEMU_WORK/$src.cp.qmp" >"$MIG_LAST_STATUS" 2>/dev/null
	read -r r_total r_down r_digest < <(python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    d = {}
f = lambda v: "null" if v is None else str(v).lower()
print(f(d.get("total_ms")), f(d.get("downtime_ms")), f(d.get("digest_ok")))' "$MIG_WORK/$src.status.json")
	[ "$rc" -eq 0 ]
}

# mig_qemu SRC DST DST_HOST MODE: QEMU straight to QEMU over kernel TCP through the router.
mig_qemu() {
	local src=$1 dst=$2 dh=$3 mode=$4 opts=()
	case $mode in
	plain) ;;
	multifd) opts=(--multifd "$MIG_QEMU_CHANNELS") ;;
	multifd-zstd) opts=(--multifd "$MIG_QEMU_CHANNELS" --zstd) ;;
	xbzrle) opts=(--xbzrle) ;;
	*) mig_say "unknown QEMU mode '$mode'"; return 1 ;;
	esac
	local rc
	qemu_migrate "$src" "$dst" "tcp:$(mig_ip "$dh"):$((4400 + MIG_SEQ))" "${opts[@]}" --timeout "$MIG_TIMEOUT"
	rc=$?
	read -r r_total r_down < <(python3 -c '
import json, sys
try:
    m = json.load(open(sys.argv[1]))
except Exception:
    m = {}
print(m.get("total-time", "null"), m.get("downtime", "null"))' "$QEMU_WORK/migrate-$src-$dst.json")
	r_digest=null
	return $rc
}

mig_run() {
	local sys=$1 src=$MIG_CUR sh=$MIG_HOST dh dst rc=0
	[ -n "$src" ] || { mig_say "mig_run: no guest (mig_guest first)"; return 1; }
	dh=$(mig_other "$sh")
	MIG_SEQ=$((MIG_SEQ + 1))
	dst=g$MIG_SEQ
	r_total=null r_down=null r_digest=null r_e2e=null
	local ram=false gok=false w0 w1 t0 t1 wire=null wall=null done_at
	MIG_T0=
	# QEMU alone runs without the appliances: their af_packet ports would take
	# a copy of every frame of its TCP stream, and CPU from it.
	case $sys in
	novacron) [ "${MIG_APPLIANCES:-0}" = 1 ] || mig_appliances_up || return 1 ;;
	qemu-*) [ "${MIG_APPLIANCES:-0}" = 0 ] || mig_appliances_down ;;
	esac
	qemu_start "$dst" --mem "$MIG_MEM_K" --incoming --netns "$MIG_WAN-$dh" \
		--qmp2 "$QEMU_WORK/$dst.cp.qmp" || return 1
	# The source's STOP and the destination's "completed", stamped by QEMU.
	local ev_src=$MIG_WORK/$src.out.events ev_dst=$MIG_WORK/$dst.in.events
	# A logger that cannot start costs this run its figure, not the migration
	# (the record then says null).
	qemu_events_start "$src" "$ev_src" && qemu_events_start "$dst" "$ev_dst" ||
		mig_say "no end-to-end downtime for this run"
	w0=$(mig_wire)
	mig_say "$sys, $MIG_PROFILE, $MIG_WORKLOAD: $src (host $sh) -> $dst (host $dh)"
	case $sys in
	novacron) mig_novacron "$src" "$dst" "$sh" "$dh" ;;
	qemu-*) mig_qemu "$src" "$dst" "$dh" "${sys#qemu-}" ;;
	*) mig_say "unknown system '$sys'"; false ;;
	esac
	rc=$?
	t1=$(date +%s.%N)
	if [ "$rc" -eq 0 ]; then
		# The source may finish first (its last bytes still in flight): wait
		# for the destination's own "completed" before the loggers stop.
		local _i
		for _i in $(seq 300); do
			grep -q '"status": "completed"' "$ev_dst" 2>/dev/null && break
			sleep 0.1
		done
	fi
	qemu_events_stop "$src"
	qemu_events_stop "$dst"
	[ "$rc" -eq 0 ] && r_e2e=$(qemu_downtime "$ev_src" "$ev_dst" 2>/dev/null)
	# wall_ms, one clock for every system: from when the system is asked to
	# migrate to the destination's "completed". NovaCron is asked by novactl
	# migrate (MIG_T0), so its peer link and sessions count; QEMU by its
	# migrate command, its MIGRATION "setup" event (where its total-time
	# starts, its TCP and multifd connects included).
	t0=$MIG_T0
	[ "$sys" = novacron ] || t0=$(qemu_migration_at "$ev_src" setup 2>/dev/null)
	if [ "$rc" -eq 0 ] && [ -n "$t0" ] && [ "$t0" != null ] &&
		done_at=$(qemu_migration_at "$ev_dst" completed 2>/dev/null) && [ "$done_at" != null ]; then
		wall=$(awk -v a="$t0" -v b="$done_at" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
	fi
	w1=$(mig_wire_after "$t1")
	[ -n "$w0" ] && [ -n "$w1" ] && wire=$((w1 - w0))
	if [ "$rc" -eq 0 ]; then
		qemu_compare_ram "$src" "$dst" && ram=true
		if qemu_cont_check "$dst" "$src"; then
			gok=true
		fi
	else
		mig_say "$sys: the migration failed"
	fi
	python3 - "$sys" "$MIG_PROFILE" "$MIG_WORKLOAD" "$r_total" "$r_down" "$wire" "$gok" \
		"$ram" "$r_digest" "$MIG_MEM_K" "$r_e2e" "$wall" >>"$MIG_RESULTS" <<'PY'
import json, sys
a = sys.argv[1:]
num = lambda v: None if v in ("null", "", "None") else int(float(v))
flag = lambda v: None if v in ("null", "", "none") else v == "true"
print(json.dumps({"system": a[0], "profile": a[1], "workload": a[2], "total_ms": num(a[3]),
                  "wall_ms": num(a[11]),
                  "downtime_ms": num(a[4]), "downtime_e2e_ms": num(a[10]),
                  "wire_bytes": num(a[5]), "guest_ok": flag(a[6]),
                  "ram_equal": flag(a[7]), "digest_ok": flag(a[8]), "mem_k": int(a[9])}))
PY
	tail -1 "$MIG_RESULTS" | sed 's/^/#   /' >&2
	if [ "$rc" -ne 0 ]; then
		# A failed migration leaves the source running: it stays the chain's guest.
		qemu_stop "$dst"
		return 1
	fi
	qemu_stop "$src"
	if [ "$gok" = true ]; then
		MIG_CUR=$dst MIG_HOST=$dh
	else
		qemu_stop "$dst"
		MIG_CUR=''
	fi
	[ "$ram" = true ] && [ "$gok" = true ] && { [ "$sys" != novacron ] || [ "$r_digest" = true ]; }
}
