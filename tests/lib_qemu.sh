# SPDX-License-Identifier: BSD-3-Clause
# lib_qemu.sh: real QEMU guests for tests, benches and the demo (sourced, bash).
#
# Set QEMU_WORK to a directory the caller owns (logs, QMP sockets, RAM dumps go
# there) and call qemu_cleanup from the caller's EXIT trap. Then:
#
#   qemu_guest                       build or find the guest (tools/mkguest)
#   qemu_start NAME [--mem KIB] [--fill MB] [--dirty MBPS] [--seed N]
#              [--append ARGS] [--netns NS] [--incoming] [--qmp2 PATH]
#                                    start QEMU NAME (TCG); --incoming: a paused
#                                    destination (-incoming defer -S); --qmp2: a
#                                    second QMP socket (for an appliance's control
#                                    plane: QEMU serves one client per socket)
#   qemu_wait_ready NAME [SECONDS]   until the workload printed "ready" and "hb 1"
#   qemu_events_start NAME FILE      log NAME's QMP events to FILE (a third QMP
#                                    socket every QEMU has) until qemu_events_stop
#   qemu_events_stop NAME
#   qemu_downtime SRC_FILE DST_FILE  end-to-end downtime in ms from two event logs
#                                    (source's STOP to the destination's completed)
#   qemu_migrate SRC DST URI [--src-uri URI] [--multifd N] [--zstd] [--xbzrle]
#                [--bandwidth BYTES_PER_S] [--timeout S (300)]
#                                    migrate SRC to DST listening on URI (the source
#                                    connects to --src-uri, default URI: put a relay
#                                    or the appliances between); waits for the end.
#                                    Bandwidth: QEMU's max-bandwidth, default unlimited
#   qemu_compare_ram SRC DST         pmemsave both (both must be stopped), compare
#   qemu_cont_check DST SRC          cont DST; its heartbeat must go on from SRC's
#   qemu_relay_start NAME LISTEN CONNECT [--record DIR] [--conns N]
#   qemu_relay_wait NAME [SECONDS]   until the relay exits; stats in $QEMU_WORK/NAME.json
#   qemu_stop NAME                   QMP quit, then SIGKILL if it does not go
#   qemu_qmp NAME COMMAND [JSON]     one QMP command (tools/qmp.py)
#
# Functions return 0 or 1 and say why on stderr ("# " lines, TAP-friendly).
# Guest RAM must not be a multiple of 256 KiB (QEMU 7.2 TCG loses dirty pages
# otherwise, see DESIGN.md): the default is 262136 KiB (256 MiB - 8 KiB);
# QEMU_ALLOW_256K=1 lets such a size through, to show that bug.

QEMU_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QEMU_BIN=${QEMU_BIN:-qemu-system-x86_64}
QEMU_MEM_K=${QEMU_MEM_K:-262136}
qemu_qmp_py() { python3 "$QEMU_SRC/tools/qmp.py" "$@"; }
declare -gA QEMU_PID=() QEMU_QMPSOCK=() QEMU_LOG=() QEMU_MEMK=() QEMU_RELAY=() QEMU_EVSOCK=()
declare -gA QEMU_EVPID=()
QEMU_KERNEL='' QEMU_INITRD='' QEMU_CMDLINE=''

qemu_say() { echo "# $*" >&2; }

qemu_guest() {
	local js
	js=$("$QEMU_SRC/tools/mkguest" --json "$@") || { qemu_say "mkguest failed"; return 1; }
	QEMU_KERNEL=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["kernel"])' "$js")
	QEMU_INITRD=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["initrd"])' "$js")
	QEMU_CMDLINE=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["cmdline"])' "$js")
}

qemu_qmp() {
	local name=$1
	shift
	qemu_qmp_py "${QEMU_QMPSOCK[$name]:?unknown QEMU $name}" "$@"
}

qemu_start() {
	local name=$1 mem=$QEMU_MEM_K fill=64 dirty=0 seed=1 append='' netns='' incoming=0 qmp2=''
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--mem) mem=$2; shift 2 ;;
		--fill) fill=$2; shift 2 ;;
		--dirty) dirty=$2; shift 2 ;;
		--seed) seed=$2; shift 2 ;;
		--append) append=$2; shift 2 ;;
		--netns) netns=$2; shift 2 ;;
		--incoming) incoming=1; shift ;;
		--qmp2) qmp2=$2; shift 2 ;;
		*) qemu_say "qemu_start: unknown option $1"; return 1 ;;
		esac
	done
	: "${QEMU_WORK:?set QEMU_WORK}"
	[ -n "$QEMU_KERNEL" ] || qemu_guest || return 1
	if [ $((mem % 256)) -eq 0 ] && [ -z "${QEMU_ALLOW_256K:-}" ]; then
		qemu_say "qemu_start: $mem KiB is a multiple of 256 KiB (QEMU 7.2 loses dirty pages): use e.g. $((mem - 8))"
		return 1
	fi
	local sock=$QEMU_WORK/$name.qmp log=$QEMU_WORK/$name.log evsock=$QEMU_WORK/$name.ev.qmp
	rm -f "$sock" "$log" "$evsock"
	local cmd=("$QEMU_BIN" -name "$name" -accel tcg -cpu max -smp 1 -m "${mem}k"
		-nodefaults -nographic -no-reboot -monitor none
		-serial "file:$log" -qmp "unix:$sock,server=on,wait=off"
		-qmp "unix:$evsock,server=on,wait=off"
		-kernel "$QEMU_KERNEL" -initrd "$QEMU_INITRD"
		-append "$QEMU_CMDLINE nc.fill_mb=$fill nc.dirty_mbps=$dirty nc.seed=$seed $append")
	[ "$incoming" -eq 1 ] && cmd+=(-incoming defer -S)
	[ -n "$qmp2" ] && rm -f "$qmp2" && cmd+=(-qmp "unix:$qmp2,server=on,wait=off")
	[ -n "$netns" ] && cmd=(ip netns exec "$netns" "${cmd[@]}")
	"${cmd[@]}" </dev/null >"$QEMU_WORK/$name.err" 2>&1 &
	QEMU_PID[$name]=$!
	QEMU_QMPSOCK[$name]=$sock
	QEMU_EVSOCK[$name]=$evsock
	QEMU_LOG[$name]=$log
	QEMU_MEMK[$name]=$mem
	local i
	for i in $(seq 100); do
		[ -S "$sock" ] && [ -S "$evsock" ] && { [ -z "$qmp2" ] || [ -S "$qmp2" ]; } && return 0
		kill -0 "${QEMU_PID[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	qemu_say "qemu_start $name: QEMU did not come up: $(tail -3 "$QEMU_WORK/$name.err")"
	return 1
}

# qemu_wait_log NAME REGEX SECONDS: until the serial log has a line matching REGEX.
qemu_wait_log() {
	local name=$1 re=$2 secs=$3 i
	for i in $(seq $((secs * 10))); do
		grep -qaE "$re" "${QEMU_LOG[$name]}" 2>/dev/null && return 0
		if ! kill -0 "${QEMU_PID[$name]}" 2>/dev/null; then
			qemu_say "$name: QEMU exited: $(tail -c 300 "${QEMU_LOG[$name]}" | tr -d '\r' | tail -3)"
			return 1
		fi
		sleep 0.1
	done
	qemu_say "$name: no '$re' on the console after $secs s"
	return 1
}

qemu_wait_ready() {
	qemu_wait_log "$1" '^hb 1' "${2:-120}"
}

# qemu_last_hb NAME: the highest heartbeat number on NAME's console (0 if none).
qemu_last_hb() {
	tr -d '\r' <"${QEMU_LOG[$1]}" 2>/dev/null | awk '/^hb [0-9]+$/ {n = $2} END {print n + 0}'
}

# qemu_events_start NAME FILE: QEMU's events (tools/qmp.py --events) go to FILE,
# from when this returns (the logger has its QMP session) until qemu_events_stop.
qemu_events_start() {
	local name=$1 file=$2 i
	qemu_events_stop "$name"
	rm -f "$file"
	# python3 itself in the background (not a function: $! would be a subshell
	# that SIGTERM does not pass on to it)
	python3 "$QEMU_SRC/tools/qmp.py" "${QEMU_EVSOCK[$name]:?unknown QEMU $name}" --events "$file" \
		2>>"$QEMU_WORK/$name.err" &
	QEMU_EVPID[$name]=$!
	for i in $(seq 50); do
		grep -q '"ready"' "$file" 2>/dev/null && return 0
		kill -0 "${QEMU_EVPID[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	qemu_say "qemu_events_start $name: the event logger did not get a QMP session"
	return 1
}

qemu_events_stop() {
	local p=${QEMU_EVPID[$1]:-}
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	unset "QEMU_EVPID[$1]"
}

qemu_downtime() { qemu_qmp_py --downtime "$1" "$2"; }
qemu_migration_at() { qemu_qmp_py --migration-at "$1" "$2"; } # EVENTS STATUS: epoch s, or null

qemu_set_caps() { # qemu_set_caps NAME CAP=on|off...
	local name=$1 caps='' c state
	shift
	for c in "$@"; do
		state=false
		[ "${c#*=}" = on ] && state=true
		caps+="${caps:+, }{\"capability\": \"${c%%=*}\", \"state\": $state}"
	done
	qemu_qmp "$name" migrate-set-capabilities "{\"capabilities\": [$caps]}" >/dev/null
}

qemu_set_params() { # qemu_set_params NAME JSON-OBJECT
	qemu_qmp "$1" migrate-set-parameters "$2" >/dev/null
}

qemu_migrate() {
	local src=$1 dst=$2 uri=$3 src_uri=$3 multifd=0 zstd=0 xbzrle=0 timeout=300
	local bandwidth=107374182400
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		--src-uri) src_uri=$2; shift 2 ;;
		--multifd) multifd=$2; shift 2 ;;
		--zstd) zstd=1; shift ;;
		--xbzrle) xbzrle=1; shift ;;
		--timeout) timeout=$2; shift 2 ;;
		--bandwidth) bandwidth=$2; shift 2 ;;
		*) qemu_say "qemu_migrate: unknown option $1"; return 1 ;;
		esac
	done
	# Every capability and parameter is set explicitly: a destination that
	# becomes the next source keeps what its own incoming migration had.
	local caps=(multifd=off xbzrle=off events=on) params="\"max-bandwidth\": $bandwidth, \"downtime-limit\": 300"
	params+=', "multifd-compression": "none"'
	if [ "$multifd" -gt 0 ]; then
		caps[0]=multifd=on
		params+=", \"multifd-channels\": $multifd"
		[ "$zstd" -eq 1 ] && params=${params/\"none\"/\"zstd\"}
	elif [ "$zstd" -eq 1 ]; then
		qemu_say "qemu_migrate: --zstd needs --multifd"
		return 1
	fi
	if [ "$xbzrle" -eq 1 ]; then
		caps[1]=xbzrle=on
		# A quarter of guest RAM, rounded up to a power of two.
		local cache=$((QEMU_MEMK[$src] * 1024 / 4)) p=1
		while [ "$p" -lt "$cache" ]; do p=$((p * 2)); done
		params+=", \"xbzrle-cache-size\": $p"
	fi
	local n
	for n in "$src" "$dst"; do
		qemu_set_caps "$n" "${caps[@]}" || return 1
		qemu_set_params "$n" "{$params}" || return 1
	done
	qemu_qmp "$dst" migrate-incoming "{\"uri\": \"$uri\"}" >/dev/null || return 1
	qemu_qmp "$src" migrate "{\"uri\": \"$src_uri\"}" >/dev/null || return 1
	local out=$QEMU_WORK/migrate-$src-$dst.json
	if ! qemu_qmp "$src" --wait-migration --timeout "$timeout" >"$out"; then
		qemu_say "migration $src -> $dst did not complete: $(cat "$out")"
		return 1
	fi
	python3 - "$out" >&2 <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); r = m.get("ram", {})
print(f"# migrated in {m.get('total-time', 0) / 1000:.2f} s, downtime {m.get('downtime', 0)} ms, "
      f"{r.get('transferred', 0) / 1048576:.1f} MiB sent, {r.get('duplicate', 0)} zero pages, "
      f"{r.get('normal', 0)} full pages, {r.get('dirty-sync-count', 0)} passes")
PY
}

# qemu_migration_info SRC DST FIELD...: values from the last query-migrate of SRC -> DST.
qemu_migration_info() {
	local f=$QEMU_WORK/migrate-$1-$2.json
	shift 2
	python3 - "$f" "$@" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for path in sys.argv[2:]:
    v = m
    for k in path.split("."):
        v = v.get(k, {}) if isinstance(v, dict) else {}
    print(v if v != {} else "")
PY
}

qemu_pmemsave() { # qemu_pmemsave NAME FILE
	qemu_qmp "$1" pmemsave "{\"val\": 0, \"size\": $((QEMU_MEMK[$1] * 1024)), \"filename\": \"$2\"}" >/dev/null
}

qemu_compare_ram() {
	local a=$1 b=$2 rc
	local fa=$QEMU_WORK/$a.ram fb=$QEMU_WORK/$b.ram
	if [ "${QEMU_MEMK[$a]}" != "${QEMU_MEMK[$b]}" ]; then
		qemu_say "compare: $a has ${QEMU_MEMK[$a]} KiB, $b ${QEMU_MEMK[$b]} KiB"
		return 1
	fi
	qemu_pmemsave "$a" "$fa" && qemu_pmemsave "$b" "$fb" || return 1
	local out
	out=$(qemu_qmp_py --compare "$fa" "$fb")
	rc=$?
	qemu_say "RAM $a vs $b: $out"
	rm -f "$fa" "$fb"
	return $rc
}

# qemu_cont_check DST [SRC]: resume DST; its console must print two heartbeats,
# numbered on from SRC's last one, and no "corrupt" line.
qemu_cont_check() {
	local dst=$1 src=${2:-} before=0
	[ -n "$src" ] && before=$(qemu_last_hb "$src")
	qemu_qmp "$dst" cont >/dev/null || return 1
	local i first=''
	for i in $(seq 300); do
		local last
		last=$(qemu_last_hb "$dst")
		if [ "$last" -gt 0 ] && [ -z "$first" ]; then first=$last; fi
		[ -n "$first" ] && [ "$last" -ge $((first + 2)) ] && break
		if ! kill -0 "${QEMU_PID[$dst]}" 2>/dev/null; then
			qemu_say "$dst: QEMU exited after cont: $(tr -d '\r' <"${QEMU_LOG[$dst]}" | tail -3)"
			return 1
		fi
		sleep 0.1
	done
	if [ -z "$first" ] || [ "$(qemu_last_hb "$dst")" -lt $((first + 2)) ]; then
		qemu_say "$dst: heartbeat did not go on after cont"
		return 1
	fi
	if [ -n "$src" ] && [ "$first" -le "$before" ]; then
		qemu_say "$dst: heartbeat restarted at $first, source was at $before"
		return 1
	fi
	if grep -qa '^corrupt' "${QEMU_LOG[$dst]}"; then
		qemu_say "$dst: the guest found corrupt pages: $(grep -a '^corrupt' "${QEMU_LOG[$dst]}" | head -3 | tr -d '\r' | tr '\n' ' ')"
		return 1
	fi
	return 0
}

qemu_stop() {
	local name=$1 pid=${QEMU_PID[$1]:-} i
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		timeout 5 python3 "$QEMU_SRC/tools/qmp.py" "${QEMU_QMPSOCK[$name]}" quit >/dev/null 2>&1
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	qemu_events_stop "$name"
	unset "QEMU_PID[$name]"
	rm -f "${QEMU_QMPSOCK[$name]}" "${QEMU_EVSOCK[$name]:-}"
	return 0
}

qemu_relay_start() {
	local name=$1 listen=$2 connect=$3
	shift 3
	: "${QEMU_WORK:?set QEMU_WORK}"
	rm -f "$QEMU_WORK/$name.json"
	qemu_qmp_py --relay "$listen" "$connect" --stats "$QEMU_WORK/$name.json" "$@" \
		>"$QEMU_WORK/$name.relay.log" 2>&1 &
	QEMU_RELAY[$name]=$!
	local i path=${listen#unix:}
	for i in $(seq 50); do
		if [ "${listen#unix:}" = "$listen" ] || [ -S "$path" ]; then return 0; fi
		sleep 0.1
	done
	qemu_say "relay $name did not start: $(cat "$QEMU_WORK/$name.relay.log")"
	return 1
}

qemu_relay_wait() { # qemu_relay_wait NAME [SECONDS]: until it exits (then SIGTERM)
	local name=$1 secs=${2:-30} pid=${QEMU_RELAY[$1]:-} i
	[ -n "$pid" ] || return 1
	for i in $(seq $((secs * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "QEMU_RELAY[$name]"
	[ -s "$QEMU_WORK/$name.json" ]
}

qemu_cleanup() {
	local n
	for n in "${!QEMU_PID[@]}"; do qemu_stop "$n"; done
	for n in "${!QEMU_RELAY[@]}"; do
		kill -TERM "${QEMU_RELAY[$n]}" 2>/dev/null
		wait "${QEMU_RELAY[$n]}" 2>/dev/null
	done
	QEMU_RELAY=()
}
