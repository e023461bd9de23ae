#!/usr/bin/env bash
# `xvm img convert` against `qemu-img convert` on the same 1 GiB input
# (half data, half holes; the data half compressible text and random
# bytes): raw->qcow2, qcow2->raw and compressed qcow2, in the same run.
# Prints "bench: NAME xvm=Ts peer=Ts ratio=R" (R = xvm/peer, < 1: xvm faster).
# Both tools flush the output before they exit (qemu-img with -t writeback:
# its default, -t unsafe, never flushes, which xvm does not allow itself).
# Standalone: bash bench/img.sh [BUILD]
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
XVM=$(cd "$BUILD" && pwd)/xvm
[ -x "$XVM" ] || { echo "img bench skipped: $XVM not built"; exit 0; }
command -v qemu-img >/dev/null || { echo "img bench skipped: qemu-img not installed (make deps)"; exit 0; }
"$XVM" img create -q -f qcow2 /dev/null 1M 2>/dev/null # warm the binary
work=$(mktemp -d "${TMPDIR:-/var/tmp}/xvm-bench-img.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The input: 1 GiB, 1 MiB of data then 1 MiB of hole, alternating; even
# data megabytes are text (compressible), odd ones random.
python3 - "$work/in.raw" <<'PY'
import os, sys
text = b"".join(b"line %08d of the xvm image benchmark: some words repeat here\n" % i
                for i in range(20000))[:1 << 20]
with open(sys.argv[1], "wb") as f:
    f.truncate(1 << 30)
    for i in range(512):
        f.seek(i * (2 << 20))
        f.write(text if i % 2 == 0 else os.urandom(1 << 20))
PY
qemu-img convert -O qcow2 "$work/in.raw" "$work/in.qcow2"
cat "$work/in.raw" "$work/in.qcow2" >/dev/null # both tools start from a warm cache

# once CMD...: "ELAPSED CPU" seconds of one run ("0 0" on failure)
once() {
	rm -f "$work/out"
	sync # no dirty pages from the previous run in this one's time
	local t0 t1
	t0=$(date +%s.%N)
	/usr/bin/time -f "%U %S" -o "$work/cpu" "$@" >/dev/null 2>"$work/err" ||
		{ echo "FAILED: $* ($(head -n 1 "$work/err"))" >&2; echo "0 0"; return; }
	t1=$(date +%s.%N)
	echo "$(echo "$t1 - $t0" | bc) $(awk '{ print $1 + $2 }' "$work/cpu")"
}
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# row NAME RUNS XVM-CMD PEER-CMD: the two alternate (the host is shared:
# alternating spreads its noise over both), best of RUNS each. The CPU
# seconds (user + system) are printed too: on a loaded host they are the
# steadier measure.
row() {
	local name=$1 runs=$2 xcmd=$3 qcmd=$4 x= q= xc= qc= r
	for _ in $(seq "$runs"); do
		r=$(once $xcmd); x=$(min "$x" "${r% *}"); xc=$(min "$xc" "${r#* }")
		r=$(once $qcmd); q=$(min "$q" "${r% *}"); qc=$(min "$qc" "${r#* }")
	done
	x=$(printf '%.3f' "$x"); q=$(printf '%.3f' "$q")
	echo "bench: $name xvm=${x}s peer=${q}s ratio=$(awk -v a="$x" -v b="$q" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') (cpu: xvm=${xc}s peer=${qc}s)"
}

row img-convert-raw-to-qcow2-1G 3 \
	"$XVM img convert -O qcow2 $work/in.raw $work/out" \
	"qemu-img convert -t writeback -O qcow2 $work/in.raw $work/out"
row img-convert-qcow2-to-raw-1G 3 \
	"$XVM img convert -f qcow2 -O raw $work/in.qcow2 $work/out" \
	"qemu-img convert -t writeback -f qcow2 -O raw $work/in.qcow2 $work/out"
row img-convert-compressed-1G 2 \
	"$XVM img convert -c -O qcow2 $work/in.raw $work/out" \
	"qemu-img convert -t writeback -c -O qcow2 $work/in.raw $work/out"
