# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
# lib_appliance: start, query and stop NovaCron appliances (a dataplane and
# its control plane) from test and bench scripts. Sourced, not run. The
# caller sets: work (a directory holding NAME.yaml and the runtime dir
# $work/NAME), DP, CP, CTL (the binaries) and an array pids (every process
# started is appended, for the caller's cleanup); optionally an array
# appliance_set of KEY=VALUE overrides that every process started gets (--set).

# appliance_start NAME [NETNS]: the dataplane, then the control plane, each
# waited for until its control socket says ready; sets NAME_dp and NAME_cp.
appliance_start() {
	local name=$1 ns=${2:-} run=() set=() kv
	[ -n "$ns" ] && run=(ip netns exec "$ns")
	for kv in ${appliance_set[@]+"${appliance_set[@]}"}; do set+=(--set "$kv"); done
	"${run[@]}" "$DP" --config "$work/$name.yaml" "${set[@]}" >>"$work/$name.dp.log" 2>&1 &
	pids+=($!)
	eval "${name}_dp=$!"
	appliance_wait "$name" --dp || { appliance_failed "$name"; return 1; }
	"${run[@]}" "$CP" --config "$work/$name.yaml" "${set[@]}" >>"$work/$name.cp.log" 2>&1 &
	pids+=($!)
	eval "${name}_cp=$!"
	appliance_wait "$name" || { appliance_failed "$name"; return 1; }
}

# appliance_wait NAME [--dp]: up to 10 s for the process to answer "ready".
appliance_wait() {
	local name=$1
	shift
	for _ in $(seq 200); do
		"$CTL" -r "$work/$name" "$@" --json status 2>/dev/null | grep -q '"state": "ready"' &&
			return 0
		sleep 0.05
	done
	return 1
}

appliance_failed() {
	echo "# $1 did not come up:" >&2
	sed 's/^/#   /' "$work/$1".*.log >&2
}

# appliance_stop NAME...: SIGTERM the control plane and dataplane of each and
# wait for them.
appliance_stop() {
	local n p
	for n in "$@"; do
		for p in "$(eval echo "\${${n}_cp:-}")" "$(eval echo "\${${n}_dp:-}")"; do
			[ -n "$p" ] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
		done
		eval "${n}_cp= ${n}_dp="
	done
}

# ctl NAME ARGS...: novactl against NAME's control plane (--dp: its dataplane).
ctl() {
	local n=$1
	shift
	"$CTL" -r "$work/$n" "$@"
}
