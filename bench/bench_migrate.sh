#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench_migrate: live migration of a real guest through the NovaCron appliances
# against QEMU's own migration over the same emulated link (kernel TCP, the
# machine's default congestion control), docs/bench.md "bench migrate".
# Run with tools/novacron bench migrate [OPTIONS]:
#   --profiles LIST    lan10g,wan1g,wan1g-lossy (default all three)
#   --workloads LIST   idle,dirty20 (default both; dirtyN: N MB/s)
#   --systems LIST     novacron,qemu-plain,qemu-multifd,qemu-multifd-zstd,qemu-xbzrle
#   --small            a guest of 256 MiB - 8 KiB, 128 MiB filled (default 1 GiB - 8 KiB, 256 MiB filled)
#   --mem-k KIB        guest RAM in KiB (not a multiple of 256); --fill MB: MiB filled
#   --nc-channels N    NovaCron's multifd channels (default 0: plain precopy, where HDE
#                      finds the most deltas: one stream, one cache)
#   --codec NAME       passed to `novactl migrate --codec NAME` (HDE compression)
#   --set KEY=VALUE    a configuration override for both appliances (repeatable),
#                      e.g. --set hde.mode=none --set amst.unsent_max_kb=512
#   --out-dir DIR      bench-migrate.json and bench-migrate.png (default build/)
#   --name NAME        the tools/wan topology name (default bm)
# Prints a table per profile and workload, the goals, and one line of JSON last.
set -uo pipefail

NC_BUILD=${NC_BUILD:?run through tools/novacron bench migrate}
NC_SOURCE=${NC_SOURCE:?run through tools/novacron bench migrate}
. "$NC_SOURCE/tests/lib_mig.sh"

usage() { sed -n '6,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
profiles=lan10g,wan1g,wan1g-lossy
workloads=idle,dirty20
systems=novacron,qemu-plain,qemu-multifd,qemu-multifd-zstd,qemu-xbzrle
mem_k=1048568 fill=256 channels=0 codec='' out_dir=$NC_BUILD name=bm
appliance_set=()
while [ $# -gt 0 ]; do
	case $1 in
	--profiles) profiles=$2; shift 2 ;;
	--workloads) workloads=$2; shift 2 ;;
	--systems) systems=$2; shift 2 ;;
	--small) mem_k=262136 fill=128; shift ;;
	--mem-k) mem_k=$2; shift 2 ;;
	--fill) fill=$2; shift 2 ;;
	--nc-channels) channels=$2; shift 2 ;;
	--codec) codec=$2; shift 2 ;;
	--set) [[ ${2:-} == *=* ]] || { echo "bench_migrate: --set wants KEY=VALUE" >&2; exit 2; }
		appliance_set+=("$2"); shift 2 ;;
	--out-dir) out_dir=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	-h | --help) usage ;;
	*) echo "bench_migrate: unknown option '$1'" >&2; usage ;;
	esac
done
IFS=, read -ra P <<<"$profiles"
IFS=, read -ra W <<<"$workloads"
IFS=, read -ra Y <<<"$systems"
for p in "${P[@]}"; do
	case $p in lan10g | wan1g | wan1g-lossy | wan100m | wire) ;; *) echo "bench_migrate: unknown profile '$p'" >&2; exit 2 ;; esac
done
for w in "${W[@]}"; do
	[[ $w =~ ^(idle|dirty[0-9]+)$ ]] || { echo "bench_migrate: workload idle or dirtyN, not '$w'" >&2; exit 2; }
done
for y in "${Y[@]}"; do
	case $y in novacron | qemu-plain | qemu-multifd | qemu-multifd-zstd | qemu-xbzrle) ;;
	*) echo "bench_migrate: unknown system '$y'" >&2; exit 2 ;;
	esac
done
[[ $mem_k =~ ^[0-9]+$ ]] && [ $((mem_k % 256)) -ne 0 ] ||
	{ echo "bench_migrate: --mem-k must be a number of KiB, not a multiple of 256 (QEMU 7.2 loses dirty pages)" >&2; exit 2; }
[[ $channels =~ ^[0-9]+$ ]] || { echo "bench_migrate: --nc-channels wants a number" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench_migrate: needs root (namespaces, hugepages)" >&2; exit 1; }
free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
[ "${free:-0}" -ge 256 ] || { echo "bench_migrate: needs 256 free hugepages (have ${free:-0})" >&2; exit 1; }
mkdir -p "$out_dir"

mig_init "$name"
trap mig_cleanup EXIT
trap "exit 1" INT TERM
MIG_MEM_K=$mem_k MIG_FILL_MB=$fill MIG_NC_CHANNELS=$channels
# Every system gets a guest that has migrated before (tests/lib_mig.sh mig_settle).
MIG_SETTLE=1
MIG_NC_ARGS=()
[ -n "$codec" ] && MIG_NC_ARGS=(--codec "$codec")
qemu_guest >/dev/null || exit 1
cc=$(sysctl -n net.ipv4.tcp_congestion_control)
t0=$(date +%s)
echo "# bench migrate: guest $mem_k KiB ($fill MiB filled), profiles ${P[*]}, workloads ${W[*]}," \
	"systems ${Y[*]}; NovaCron ${channels:-0} channels${codec:+, codec $codec}; QEMU over TCP ($cc)"

bad=0
for p in "${P[@]}"; do
	if ! mig_up "$p"; then
		echo "# $p: the topology did not come up" >&2
		bad=1
		mig_down
		continue
	fi
	cc=$(ip netns exec "$name-a" sysctl -n net.ipv4.tcp_congestion_control)
	for w in "${W[@]}"; do
		for y in "${Y[@]}"; do
			if [ -z "$MIG_CUR" ] || [ "$MIG_WORKLOAD" != "$w" ]; then
				mig_guest "$w" || { echo "# $p $w: the guest did not boot" >&2; bad=1; continue 2; }
			fi
			mig_run "$y" || bad=1
		done
		qemu_stop "$MIG_CUR" 2>/dev/null
		MIG_CUR=''
	done
	mig_down
done

json=$out_dir/bench-migrate.json
python3 "$NC_SOURCE/bench/migrate_report.py" "$MIG_RESULTS" --json "$json" --png "$out_dir/bench-migrate.png" \
	--title "NovaCron vs QEMU migration, guest $((mem_k / 1024)) MiB ($(date -u +%Y-%m-%dT%H:%MZ))" \
	--meta "mem_k=$mem_k" --meta "fill_mb=$fill" --meta "nc_channels=$channels" \
	--meta "codec=\"$codec\"" --meta "tcp_congestion_control=\"$cc\"" --meta "seconds=$(($(date +%s) - t0))" ||
	bad=1
exit $bad
