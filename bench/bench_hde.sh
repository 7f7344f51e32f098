#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench_hde: HDE on QEMU migration streams (issue 4, "Done when" 3 and 4).
#
#   tools/novacron bench hde [--corpus DIR] [--synthetic-only] [--no-capture]
#                            [--ram-mb N] [--qemu-fill-mb N] [--cache-mb N]
#                            [--strongest S] [--fastest S]
#
# For every stream of the corpus (DIR/manifest.json from tools/capture-streams;
# default /var/cache/novacron/corpus, then /var/tmp/novacron/streams; captured
# with tools/capture-streams when the tree has it and --no-capture is not
# given) and for synthetic streams of tools/hde (a mixed-memory idle guest, a
# dirtying guest, a multifd channel; --ram-mb of guest RAM, default 128), and
# a real QEMU 7.2 precopy stream of an idle 256 MiB guest whose RAM holds
# --qemu-fill-mb (default 64, 0 = skip) of this machine's files (half text:
# headers and Python sources; half binary: shared libraries), captured here
# plain, with XBZRLE and with multifd (4 channels) + zstd for the baselines, it
# measures on one core, in this run: HDE's bytes and encode/decode MB/s with
# the strongest setting, encode MB/s with the fastest, zstd -1 over the whole
# stream, and takes QEMU's multifd+zstd and XBZRLE bytes from the manifest.
# A multifd stream's connections are coded as separate HDE streams sharing
# --cache-mb (default 256) between them. Prints a table, then one JSON line:
# {"bench": "hde", "streams": [...]}. Without a corpus it still measures the
# synthetic streams, then fails saying how to get the corpus.
set -euo pipefail

top=${NC_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
build=${NC_BUILD:-$top/build}
hde=$build/tools/hde/novacron-hde
[ -x "$hde" ] || { echo "bench_hde: $hde not built (ninja -C $build)" >&2; exit 1; }

corpus= synthetic_only=0 capture=1 ram_mb=128 cache_mb=256 strongest=strongest fastest=fastest
qemu_fill_mb=64
while [ $# -gt 0 ]; do
	case $1 in
	--corpus) corpus=$2; shift 2 ;;
	--synthetic-only) synthetic_only=1; shift ;;
	--no-capture) capture=0; shift ;;
	--ram-mb) ram_mb=$2; shift 2 ;;
	--qemu-fill-mb) qemu_fill_mb=$2; shift 2 ;;
	--cache-mb) cache_mb=$2; shift 2 ;;
	--strongest) strongest=$2; shift 2 ;;
	--fastest) fastest=$2; shift 2 ;;
	-h|--help) sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench_hde: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

work=$(mktemp -d /tmp/bench_hde.XXXXXX)
qemu_pid= sock_pid=
cleanup() {
	[ -z "$qemu_pid" ] || { kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null; }
	[ -z "$sock_pid" ] || { kill "$sock_pid" 2>/dev/null; wait "$sock_pid" 2>/dev/null; }
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Synthetic streams (always): what "mixed guest memory" means until the corpus exists.
for kind in idle dirty multifd; do
	"$hde" synth --kind "$kind" --ram-mb "$ram_mb" --seed 7 "$work/synth-$kind.bin"
done

# A real QEMU precopy stream: an idle guest (paused, RAM loaded with files).
qemu_stream= qemu_xbzrle= qemu_mfzstd=
if [ "$qemu_fill_mb" -gt 0 ] && command -v qemu-system-x86_64 >/dev/null; then
	python3 - "$work/fill.bin" "$qemu_fill_mb" <<'PY'
import glob, sys
out, mb = sys.argv[1], int(sys.argv[2])
half = mb << 19
text = sorted(glob.glob("/usr/include/**/*.h", recursive=True)) + \
       sorted(glob.glob("/usr/lib/python3*/**/*.py", recursive=True))
binary = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/*.so*"))
with open(out, "wb") as f:
    for files in (text, binary):
        n = 0
        for p in files:
            try:
                b = open(p, "rb").read()
            except OSError:
                continue
            b = b[:half - n]
            f.write(b)
            n += len(b)
            if n >= half:
                break
        f.write(b"\0" * (-n % 4096))
PY
	hmp() { printf '%s\n' "$1" | socat -t 2 - "UNIX-CONNECT:$work/q.mon" 2>/dev/null | tr -d '\r'; }
	# capture MODE: migrate a fresh paused guest holding fill.bin; 0 if it completed
	capture() {
		local st ok=1
		sock_pid=
		rm -f "$work/q.mon"
		qemu-system-x86_64 -M pc -accel tcg -m 262136k -display none -nodefaults -S \
			-monitor "unix:$work/q.mon,server,nowait" \
			-device "loader,file=$work/fill.bin,addr=0x1000000,force-raw=on" 2>>"$work/qemu.log" &
		qemu_pid=$!
		for _ in $(seq 100); do [ -S "$work/q.mon" ] && break; sleep 0.1; done
		case $1 in
		plain) hmp "migrate \"exec:cat > $work/qemu-idle.bin\"" >/dev/null ;;
		xbzrle)
			hmp 'migrate_set_capability xbzrle on' >/dev/null
			hmp "migrate \"exec:cat > $work/qemu-xbzrle.bin\"" >/dev/null ;;
		mfzstd)
			socat -u "UNIX-LISTEN:$work/mf.sock,fork" SYSTEM:"cat > $work/qemu-mfz-\$\$.bin" &
			sock_pid=$!
			sleep 0.2
			hmp 'migrate_set_capability multifd on' >/dev/null
			hmp 'migrate_set_parameter multifd-channels 4' >/dev/null
			hmp 'migrate_set_parameter multifd-compression zstd' >/dev/null
			hmp "migrate -d unix:$work/mf.sock" >/dev/null ;;
		esac
		for _ in $(seq 600); do
			st=$(hmp 'info migrate')
			grep -q 'Migration status: completed' <<<"$st" && { ok=0; break; }
			grep -q 'Migration status: failed' <<<"$st" && break
			sleep 0.1
		done
		kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null || true; qemu_pid=
		if [ -n "$sock_pid" ]; then
			sleep 0.3
			kill "$sock_pid" 2>/dev/null; wait "$sock_pid" 2>/dev/null || true
			sock_pid=
		fi
		return $ok
	}
	capture plain && qemu_stream=$work/qemu-idle.bin
	capture xbzrle && qemu_xbzrle=$(stat -c %s "$work/qemu-xbzrle.bin")
	capture mfzstd && qemu_mfzstd=$(cat "$work"/qemu-mfz-*.bin | wc -c)
	[ -n "$qemu_stream" ] || echo "bench_hde: the QEMU capture failed; skipping that stream" >&2
fi

manifest=
if [ "$synthetic_only" -eq 0 ]; then
	if [ -n "$corpus" ]; then
		[ -f "$corpus/manifest.json" ] || { echo "bench_hde: no $corpus/manifest.json" >&2; exit 1; }
		manifest=$corpus/manifest.json
	else
		for d in /var/cache/novacron/corpus /var/tmp/novacron/streams; do
			if [ -f "$d/manifest.json" ]; then manifest=$d/manifest.json; break; fi
		done
		if [ -z "$manifest" ] && [ "$capture" -eq 1 ] && [ -x "$top/tools/capture-streams" ]; then
			echo "bench_hde: no corpus; capturing one with tools/capture-streams" >&2
			"$top/tools/capture-streams" --out /var/cache/novacron/corpus >&2
			manifest=/var/cache/novacron/corpus/manifest.json
		fi
	fi
fi

python3 - "$hde" "$work" "$cache_mb" "$strongest" "$fastest" "$synthetic_only" "${manifest:-}" \
	"${qemu_stream:-}" "${qemu_mfzstd:-}" "${qemu_xbzrle:-}" <<'PY'
import json, os, subprocess, sys
(hde, work, cache_mb, strongest, fastest, synthetic_only, manifest, qemu_stream, q_mfz,
 q_xbz) = sys.argv[1:]
cache_mb = int(cache_mb)

def run(args):
    r = subprocess.run([hde] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_hde: novacron-hde {' '.join(args)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)

def measure(name, files, dirtying, qemu_mf=None, xbz=None, synthetic=False):
    cache_kb = max(64, cache_mb * 1024 // len(files))
    tot = dict(input_bytes=0, hde_bytes=0, zstd1_bytes=0, hde_fast_bytes=0)
    t_enc = t_fast = t_dec = 0.0
    cache_peak = cache_bound = mem_peak = 0
    exact = True
    tiers = {}
    for f in files:
        s = run(["stats", "--setting", strongest, "--cache-kb", str(cache_kb), f])
        q = run(["stats", "--setting", fastest, "--cache-kb", str(cache_kb), f])
        z = run(["zstd", "--level", "1", f])
        n = s["input_bytes"]
        tot["input_bytes"] += n
        tot["hde_bytes"] += s["output_bytes"]
        tot["hde_fast_bytes"] += q["output_bytes"]
        tot["zstd1_bytes"] += z["output_bytes"]
        t_enc += n / max(s["encode_mbps"], 1e-9)
        t_dec += n / max(s["decode_mbps"], 1e-9)
        t_fast += n / max(q["encode_mbps"], 1e-9)
        exact = exact and s["roundtrip_exact"] and q["roundtrip_exact"]
        cache_peak += max(s["cache"]["encoder_bytes"], s["cache"]["decoder_bytes"])
        cache_bound += s["cache"]["limit"]
        mem_peak += max(s["memory"]["encoder_peak"], s["memory"]["decoder_peak"])
        for t, v in s["tiers"].items():
            a = tiers.setdefault(t, {"pages": 0, "bytes_in": 0, "bytes_out": 0})
            for k in a:
                a[k] += v[k]
    n = tot["input_bytes"]
    rec = {"name": name, "synthetic": synthetic, "files": len(files), **tot,
           "qemu_multifd_zstd_bytes": qemu_mf, "xbzrle_bytes": xbz, "dirtying": dirtying,
           "hde_encode_mbps": round(n / t_enc, 1) if t_enc else None,
           "hde_fast_encode_mbps": round(n / t_fast, 1) if t_fast else None,
           "hde_decode_mbps": round(n / t_dec, 1) if t_dec else None,
           "roundtrip_exact": exact, "cache_bytes_peak": cache_peak,
           "cache_bytes_bound": cache_bound, "cache_within_bound": cache_peak <= cache_bound,
           "memory_bytes_peak": mem_peak, "tiers": tiers}
    base = [b for b in (tot["zstd1_bytes"], qemu_mf, xbz) if b]
    best = min(base)
    goal = 0.6 if dirtying else 0.85
    rec["hde_vs_best"] = round(tot["hde_bytes"] / best, 4)
    rec["goal_ratio"] = goal
    rec["goal_met"] = rec["hde_vs_best"] <= goal
    return rec

streams = []
for kind, dirt in (("idle", False), ("dirty", True), ("multifd", True)):
    streams.append(measure(f"synthetic-{kind}", [os.path.join(work, f"synth-{kind}.bin")], dirt,
                           synthetic=True))
if qemu_stream:
    streams.append(measure("qemu-idle-files", [qemu_stream], False, int(q_mfz) if q_mfz else None,
                           int(q_xbz) if q_xbz else None, synthetic=True))
missing = None
if manifest:
    m = json.load(open(manifest))
    base = os.path.dirname(manifest)
    wl = {w["name"]: w for w in m.get("workloads", [])}
    for s in m.get("streams", []):
        w = wl.get(s.get("workload"), {})
        files = [os.path.join(base, f) for f in s.get("files", [])]
        if not files:
            continue
        streams.append(measure(s["name"], files, bool(s.get("dirtying", w.get("dirtying"))),
                               w.get("qemu_multifd_zstd_bytes"), w.get("xbzrle_bytes")))
elif synthetic_only != "1":
    missing = ("no corpus: run tools/capture-streams (it writes manifest.json), or pass "
               "--corpus DIR; --synthetic-only measures the synthetic streams alone")

hdr = f"{'stream':22} {'input':>11} {'hde':>10} {'zstd-1':>10} {'mf+zstd':>10} {'xbzrle':>10} {'vs best':>7} {'enc':>7} {'fast':>7} {'dec':>7} {'cache MiB':>10}"
print(hdr)
for r in streams:
    f = lambda v: f"{v:>10}" if v is not None else f"{'-':>10}"
    print(f"{r['name']:22} {r['input_bytes']:>11} {r['hde_bytes']:>10} {r['zstd1_bytes']:>10} "
          f"{f(r['qemu_multifd_zstd_bytes'])} {f(r['xbzrle_bytes'])} {r['hde_vs_best']:>7} "
          f"{r['hde_encode_mbps']:>7} {r['hde_fast_encode_mbps']:>7} {r['hde_decode_mbps']:>7} "
          f"{r['cache_bytes_peak'] / 1048576:>5.0f}/{r['cache_bytes_bound'] / 1048576:<4.0f}")
out = {"bench": "hde", "strongest": strongest, "fastest": fastest, "cache_mb": cache_mb,
       "corpus": manifest or None, "streams": streams}
if missing:
    out["error"] = missing
print(json.dumps(out))
if missing:
    print(f"bench_hde: {missing}", file=sys.stderr)
    sys.exit(1)
if not all(r["roundtrip_exact"] and r["cache_within_bound"] for r in streams):
    sys.exit("bench_hde: a stream did not round-trip exactly or the cache outgrew its bound")
PY
