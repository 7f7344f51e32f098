#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# integration_wan: tools/wan and wanem with every named profile. For each:
# bring the topology up (hosts A and B, router R), check the addresses, MTU
# and offloads, ping A -> B (RTT near the nominal, never below it), iperf3
# A -> B over TCP with the machine's default congestion control (the rate is
# shaped: not above the profile's, and delivered: not far below it), and
# wanem's counters (frames conserved, loss near the configured rate, wire
# bytes at least the payload). Then: `set` on a running link, `up` over an
# existing one, seeded loss repeated exactly, `down` leaving nothing behind,
# and a refused netem backend on a kernel without sch_netem.
set -euo pipefail

B=${NC_BUILD:?}
S=${NC_SOURCE:?}
export WANEM=$B/tools/wanem/wanem
WAN=$S/tools/wan
work=$(mktemp -d /tmp/nc-wan.XXXXXX)
export NC_WAN_RUN=$work/run
name=ncwt$$
checks=0
failures=0
iperf_pid=

cleanup() {
	set +e
	[ -z "$iperf_pid" ] || kill -TERM "$iperf_pid" 2>/dev/null
	"$WAN" down --name "$name" 2>/dev/null
	"$WAN" down --name "$name-x" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() {
	checks=$((checks + 1))
	echo "ok $checks - $*"
}
not_ok() {
	checks=$((checks + 1))
	failures=$((failures + 1))
	echo "not ok $checks - $*"
}
check() { # check DESCRIPTION COMMAND...: ok if COMMAND succeeds
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
fcmp() { # fcmp A OP B: floating-point comparison (OP: < <= > >=)
	awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
		r = (op == "<") ? a < b : (op == "<=") ? a <= b : (op == ">") ? a > b : a >= b
		exit !r }'
}
inrange() { # inrange X LO HI: LO <= X <= HI (floating point)
	awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'
}
wan() { "$WAN" "$@"; }
in_a() { wan exec --name "$name" a "$@"; }
in_b() { wan exec --name "$name" b "$@"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

for t in iperf3 ping ethtool python3; do
	command -v "$t" >/dev/null || { echo "Bail out! no $t: run tools/novacron setup"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "Bail out! needs root (network namespaces)"; exit 1; }
[ -x "$WANEM" ] || { echo "Bail out! no $WANEM"; exit 1; }

# json_get FILE EXPR: evaluate a Python expression over the JSON in FILE (as d)
json_get() {
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# The counters of one direction (0: A -> B, 1: B -> A) from the latest file;
# wanem rewrites it every second, so wait for a fresh one.
fresh_stats() {
	local f=$NC_WAN_RUN/$name/stats.json up0
	up0=$(json_get "$f" 'd["wanem"]["uptime_s"]')
	for _ in $(seq 30); do
		sleep 0.1
		[ "$(json_get "$f" 'd["wanem"]["uptime_s"]')" = "$up0" ] || break
	done
	cp "$f" "$work/stats.json"
}
ctr() { json_get "$work/stats.json" "d['links'][$1]['$2']"; }

# profile_test PROFILE RATE_MBIT RTT_MS LOSS_PCT MTU MIN_RATE_FRACTION
profile_test() {
	local prof=$1 rate=$2 rtt=$3 loss=$4 mtu=$5 minfrac=$6
	echo "# profile $prof: $rate Mbit/s, RTT $rtt ms, loss $loss% each way, MTU $mtu"
	if ! wan up "$prof" --name "$name" 2>"$work/up.log"; then
		not_ok "$prof: up"
		sed 's/^/#   /' "$work/up.log"
		return
	fi
	ok "$prof: up"
	local h n=0
	for h in a b r; do [ -e "/run/netns/$name-$h" ] && n=$((n + 1)); done
	check "$prof: namespaces $name-a, -b, -r exist" [ "$n" -eq 3 ]
	check "$prof: one wanem in R" [ "$(ip netns pids "$name-r" | wc -l)" -eq 1 ]
	check "$prof: A is 10.77.0.1/24 on a0" \
		grep -q 'inet 10.77.0.1/24' <(ip -n "$name-a" -4 addr show dev a0)
	check "$prof: B is 10.77.0.2/24 on b0" \
		grep -q 'inet 10.77.0.2/24' <(ip -n "$name-b" -4 addr show dev b0)
	check "$prof: R has no IPv4 address" [ -z "$(ip -n "$name-r" -4 -o addr show scope global)" ]
	check "$prof: R does not forward" \
		[ "$(wan exec --name "$name" r sysctl -n net.ipv4.ip_forward)" = 0 ]
	local mtus
	mtus=$( (ip -n "$name-a" link show a0; ip -n "$name-b" link show b0
		ip -n "$name-r" link show ra; ip -n "$name-r" link show rb) |
		grep -o 'mtu [0-9]*' | sort -u)
	check "$prof: MTU $mtu on all four veths" [ "$mtus" = "mtu $mtu" ]
	check "$prof: TSO, GSO, GRO off on ra" [ -z "$(wan exec --name "$name" r ethtool -k ra |
		grep -E '^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload): on')" ]

	# ping: a warm-up resolves ARP, then 20 echoes.
	in_a ping -c 3 -i 0.2 -W 2 -q 10.77.0.2 >/dev/null 2>&1 || true
	local out min avg
	out=$(in_a ping -c 20 -i 0.1 -W 2 -q 10.77.0.2 2>&1 || true)
	read -r min avg < <(sed -n 's|.* = \([0-9.]*\)/\([0-9.]*\)/.*|\1 \2|p' <<<"$out")
	if [ -z "${avg:-}" ]; then
		not_ok "$prof: ping got no answer"
		# shellcheck disable=SC2001
		sed 's/^/#   /' <<<"$out"
	elif [ "$rtt" = 0 ]; then
		check "$prof: ping RTT avg $avg ms < 5 ms (min $min)" fcmp "$avg" "<" 5
	else
		check "$prof: ping RTT avg $avg ms within 20% of $rtt ms" \
			fcmp "$(awk -v a="$avg" -v r="$rtt" 'BEGIN { print (a - r) / r }')" "<=" 0.2
		check "$prof: ping RTT min $min ms not below $rtt ms" fcmp "$min" ">=" "$((rtt))"
	fi

	# iperf3: a server in B, a client in A, 2 s omitted (TCP start-up),
	# then 4 s measured at the receiver.
	local pidf=$work/iperf-$prof.pid
	rm -f "$pidf"
	in_b iperf3 -s -D -B 10.77.0.2 -I "$pidf" --logfile "$work/iperf-server.log"
	for _ in $(seq 50); do [ -s "$pidf" ] && break; sleep 0.05; done
	iperf_pid=$(cat "$pidf" 2>/dev/null || true)
	sleep 0.2
	local wpid t0 t1 secs0 secs1
	wpid=$(cat "$NC_WAN_RUN/$name/wanem.pid")
	t0=$(cpu_ticks "$wpid")
	secs0=$(date +%s.%N)
	# The floor tests the emulator's rate, not one TCP flow's luck: a run
	# below it (a BBR overshoot that cost 3000 queue drops in 4 s was seen
	# under ASan, twice in a row once on a slow day) is run again, up to
	# three runs, and the best counts.
	local got bytes cc cpu floor try best=-1
	floor=$(awk -v r="$rate" -v f="$minfrac" 'BEGIN { print r * f }')
	for try in 1 2 3; do
		if ! in_a iperf3 -c 10.77.0.2 -t 4 -O 2 -J >"$work/iperf.$try.json" 2>&1; then
			not_ok "$prof: iperf3 ran"
			head -c 2000 "$work/iperf.$try.json" | sed 's/^/#   /'
			[ -z "$iperf_pid" ] || kill -TERM "$iperf_pid" 2>/dev/null || true
			iperf_pid=
			return
		fi
		got=$(json_get "$work/iperf.$try.json" \
			'round(d["end"]["sum_received"]["bits_per_second"] / 1e6, 1)')
		if fcmp "$got" ">" "$best"; then
			best=$got
			cp "$work/iperf.$try.json" "$work/iperf.json"
		fi
		fcmp "$best" ">=" "$floor" && break
		[ "$try" -lt 3 ] && echo "# $prof: iperf3 $got Mbit/s, below $floor: once more"
	done
	t1=$(cpu_ticks "$wpid")
	secs1=$(date +%s.%N)
	[ -z "$iperf_pid" ] || kill -TERM "$iperf_pid" 2>/dev/null || true
	iperf_pid=
	got=$best
	bytes=$(json_get "$work/iperf.json" 'd["end"]["sum_received"]["bytes"]')
	cc=$(json_get "$work/iperf.json" 'd["end"].get("sender_tcp_congestion", "?")')
	cpu=$(awk -v t="$((t1 - t0))" -v a="$secs0" -v b="$secs1" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.0f", 100 * t / hz / (b - a) }')
	echo "# $prof: iperf3 $got Mbit/s ($cc), wanem CPU $cpu% of one core over the run"
	check "$prof: iperf3 $got Mbit/s not above $rate Mbit/s + 5%" \
		fcmp "$got" "<=" "$(awk -v r="$rate" 'BEGIN { print r * 1.05 }')"
	check "$prof: iperf3 $got Mbit/s at least $floor Mbit/s" fcmp "$got" ">=" "$floor"

	# Counters: conserved, loss near the configured rate, wire bytes.
	fresh_stats
	local d in out lost qd dup buf err fly ring p k exp tol
	for d in 0 1; do
		in=$(ctr $d in_frames)
		out=$(ctr $d out_frames)
		lost=$(ctr $d loss_frames)
		qd=$(ctr $d queue_drop_frames)
		dup=$(ctr $d dup_frames)
		buf=$(ctr $d buffer_drop_frames)
		err=$(ctr $d error_frames)
		fly=$(ctr $d in_flight_frames)
		ring=$(ctr $d rx_ring_drops)
		local dir="A->B"
		[ "$d" = 0 ] || dir="B->A"
		echo "# $prof $dir: in $in out $out loss $lost queue-drop $qd buffer-drop $buf" \
			"errors $err in-flight $fly ring-drops $ring"
		check "$prof $dir: frames conserved (in + dup = out + drops + in flight)" \
			[ $((in + dup)) -eq $((out + lost + qd + buf + err + fly)) ]
		check "$prof $dir: no delay-line or send drops" [ $((buf + err)) -eq 0 ]
		p=$(awk -v l="$loss" 'BEGIN { print l / 100 }')
		exp=$(awk -v n="$in" -v p="$p" 'BEGIN { printf "%.1f", n * p }')
		if [ "$loss" = 0 ]; then
			check "$prof $dir: no loss drops" [ "$lost" -eq 0 ]
		elif fcmp "$exp" ">=" 20; then
			# within 5 standard deviations of the binomial mean
			tol=$(awk -v e="$exp" -v p="$p" 'BEGIN { printf "%.1f", 5 * sqrt(e * (1 - p)) + 2 }')
			check "$prof $dir: loss drops $lost of $in frames, expected $exp +- $tol" \
				fcmp "$(awk -v k="$lost" -v e="$exp" 'BEGIN { print (k > e ? k - e : e - k) }')" \
				"<=" "$tol"
		else
			echo "# $prof $dir: $in frames, too few to judge a loss rate of $loss%"
		fi
	done
	k=$(ctr 0 out_bytes)
	check "$prof: A->B wire bytes out $k >= TCP payload received $bytes" [ "$k" -ge "$bytes" ]
}

echo "# tools/wan with wanem $WANEM, namespaces $name-*"
profile_test lan10g 10000 0 0 9000 0.05
profile_test wan1g 1000 50 0.1 1500 0.7
profile_test wan1g-lossy 1000 50 1 1500 0.3
# 80 ms RTT, 0.1% loss: one short TCP run measured 63 Mbit/s here; the floor
# shows the link is not crippled, the ceiling above that the rate is applied.
profile_test wan100m 100 80 0.1 1500 0.5

echo "# set: a running link changes profile"
old=$(cat "$NC_WAN_RUN/$name/wanem.pid")
if wan set lan10g --name "$name" 2>"$work/set.log"; then ok "set lan10g"; else
	not_ok "set lan10g"
	sed 's/^/#   /' "$work/set.log"
fi
check "set: MTU now 9000" grep -q 'mtu 9000' <(ip -n "$name-r" link show rb)
check "set: the old wanem is gone" [ ! -e "/proc/$old" ]
in_a ping -c 1 -W 2 -q 10.77.0.2 >/dev/null 2>&1 || true # ARP
out=$(in_a ping -c 5 -i 0.1 -W 2 -q 10.77.0.2 2>&1 || true)
avg=$(sed -n 's|.* = [0-9.]*/\([0-9.]*\)/.*|\1|p' <<<"$out")
check "set: RTT now ${avg:-none} ms < 5 ms" fcmp "${avg:-99}" "<" 5
check "status lists the link" grep -q "^$name .*lan10g" <(wan status)

echo "# up over an existing link recreates it"
old=$(cat "$NC_WAN_RUN/$name/wanem.pid")
check "up again" wan up wire --name "$name" --rate 200mbit --rtt 10ms 2>/dev/null
check "one wanem in R" [ "$(ip netns pids "$name-r" | wc -l)" -eq 1 ]
check "the old wanem is gone" [ ! -e "/proc/$old" ]
in_a ping -c 1 -W 2 -q 10.77.0.2 >/dev/null 2>&1 || true # ARP
out=$(in_a ping -c 5 -i 0.1 -W 2 -q 10.77.0.2 2>&1 || true)
avg=$(sed -n 's|.* = [0-9.]*/\([0-9.]*\)/.*|\1|p' <<<"$out")
check "custom --rtt 10ms: RTT ${avg:-none} ms in [10, 12]" inrange "${avg:-0}" 10 12

echo "# the same seed drops the same frames"
# seeded_run SEED: which of 60 echoes got an answer through 20% loss each
# way. Static ARP entries: only the echoes cross, in the same order each run.
seeded_run() {
	local ma mb
	wan up wire --name "$name" --loss 20 --seed "$1" 2>/dev/null
	ma=$(ip -n "$name-a" -br link show a0 | awk '{ print $3 }')
	mb=$(ip -n "$name-b" -br link show b0 | awk '{ print $3 }')
	ip -n "$name-a" neigh replace 10.77.0.2 lladdr "$mb" dev a0 nud permanent
	ip -n "$name-b" neigh replace 10.77.0.1 lladdr "$ma" dev b0 nud permanent
	in_a ping -c 60 -i 0.02 -W 1 10.77.0.2 2>/dev/null | sed -n 's/.*icmp_seq=\([0-9]*\) .*/\1/p' |
		tr '\n' ' '
}
r1=$(seeded_run 7)
r2=$(seeded_run 7)
r3=$(seeded_run 8)
n1=$(wc -w <<<"$r1")
echo "# seed 7: $n1 of 60 answered; seed 8: $(wc -w <<<"$r3")"
check "same seed, same answers" [ "$r1" = "$r2" ]
check "another seed, other answers" [ "$r1" != "$r3" ]
check "about 64% answered ($n1 of 60)" inrange "$n1" 25 52

echo "# down leaves nothing behind"
wpid=$(cat "$NC_WAN_RUN/$name/wanem.pid")
check "down" wan down --name "$name"
check "no namespace $name-* left" [ -z "$(ip netns list | grep "^$name-" || true)" ]
check "wanem $wpid gone" [ ! -e "/proc/$wpid" ]
check "no wanem of $name left" [ -z "$(grep -l "$NC_WAN_RUN/$name/" /proc/[0-9]*/cmdline 2>/dev/null || true)" ]
check "no state left" [ ! -e "$NC_WAN_RUN/$name" ]
check "down again is harmless" wan down --name "$name"

echo "# bad requests"
check "unknown profile refused" bash -c "! '$WAN' up nope --name '$name-x' 2>/dev/null"
check "bad name refused" bash -c "! '$WAN' up wan1g --name 'a/b' 2>/dev/null"
for t in "--rtt 50us" "--rtt abc" "--delay 5ns" "--delay xs" "--reorder-delay 1,5s"; do
	check "time '$t' refused" bash -c "! '$WAN' up wan1g --name '$name-x' $t 2>/dev/null"
done
# Offloads that cannot be checked are not taken as off.
stub=$(mktemp -d)
printf '#!/bin/sh\nexit 1\n' >"$stub/ethtool"
chmod +x "$stub/ethtool"
check "up refused when ethtool cannot read the offloads" \
	bash -c "! PATH='$stub':\$PATH '$WAN' up wan1g --name '$name-x' 2>/dev/null"
rm -rf "$stub"
if ip netns add "$name-p" 2>/dev/null && ip -n "$name-p" link add p0 type veth peer name p1 &&
	! ip netns exec "$name-p" tc qdisc add dev p0 root netem delay 1ms 2>/dev/null; then
	ip netns del "$name-p"
	check "netem backend refused without sch_netem" \
		bash -c "! '$WAN' up wan1g --name '$name-x' --backend netem 2>/dev/null"
else
	ip netns del "$name-p" 2>/dev/null || true
	echo "# this kernel has sch_netem: the netem backend is not checked here"
fi
check "nothing left by refused requests" [ -z "$(ip netns list | grep "^$name" || true)" ]

echo "1..$checks"
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
