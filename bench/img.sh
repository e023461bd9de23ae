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

# best of N runs, in seconds
best() {
	local n=$1 best=
	shift
	for _ in $(seq "$n"); do
		rm -f "$work/out"
		local t0 t1
		sync # no dirty pages from the previous run in this one's time
		t0=$(date +%s.%N)
		"$@" >/dev/null 2>"$work/err" || { echo "FAILED: $* ($(head -n 1 "$work/err"))" >&2; echo 0; return; }
		t1=$(date +%s.%N)
		local t; t=$(echo "$t1 - $t0" | bc)
		if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
	done
	printf '%.3f' "$best"
}

row() {
	local name=$1 runs=$2 xcmd=$3 qcmd=$4
	local x q
	x=$(best "$runs" $xcmd)
	q=$(best "$runs" $qcmd)
	echo "bench: $name xvm=${x}s peer=${q}s ratio=$(awk -v a="$x" -v b="$q" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
}

row img-convert-raw-to-qcow2-1G 3 \
	"$XVM img convert -O qcow2 $work/in.raw $work/out" \
	"qemu-img convert -t writeback -O qcow2 $work/in.raw $work/out"
row img-convert-qcow2-to-raw-1G 3 \
	"$XVM img convert -f qcow2 -O raw $work/in.qcow2 $work/out" \
	"qemu-img convert -t writeback -f qcow2 -O raw $work/in.qcow2 $work/out"
row img-convert-compressed-1G 1 \
	"$XVM img convert -c -O qcow2 $work/in.raw $work/out" \
	"qemu-img convert -t writeback -c -O qcow2 $work/in.raw $work/out"
