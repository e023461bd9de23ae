#!/usr/bin/env bash
# NBD read throughput: `xvm nbd` against `qemu-nbd`, both serving the same
# 1 GiB image (half data, half holes; raw and qcow2) read-only on a Unix
# socket, read whole by `nbdcopy URI null:` (multi-conn where offered).
# Prints "bench: NAME xvm=Ts peer=Ts ratio=R" (R = xvm/peer, < 1: xvm faster).
# Standalone: bash bench/nbd.sh [BUILD]
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
XVM=$(cd "$BUILD" && pwd)/xvm
[ -x "$XVM" ] || { echo "nbd bench skipped: $XVM not built"; exit 0; }
for t in qemu-nbd nbdcopy qemu-img; do
	command -v $t >/dev/null || { echo "nbd bench skipped: $t not installed (make deps)"; exit 0; }
done
work=$(mktemp -d "${TMPDIR:-/var/tmp}/xvm-bench-nbd.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; sleep 0.3; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$work/in.raw" <<'PY'
import os, sys
text = b"".join(b"line %08d of the xvm nbd benchmark: some words repeat here\n" % i
                for i in range(20000))[:1 << 20]
with open(sys.argv[1], "wb") as f:
    f.truncate(1 << 30)
    for i in range(512):
        f.seek(i * (2 << 20))
        f.write(text if i % 2 == 0 else os.urandom(1 << 20))
PY
qemu-img convert -O qcow2 "$work/in.raw" "$work/in.qcow2"
cat "$work/in.raw" "$work/in.qcow2" >/dev/null

# start WHO FMT IMAGE: a read-only server on $work/WHO.sock
start() {
	local who=$1 fmt=$2 img=$3 sock=$work/$1.sock
	rm -f "$sock"
	if [ "$who" = xvm ]; then
		"$XVM" nbd --fork --pid-file "$work/$who.pid" -r -t -e 8 -f "$fmt" -k "$sock" "$img"
	else
		qemu-nbd --fork --pid-file "$work/$who.pid" -r -t -e 8 -f "$fmt" -k "$sock" "$img"
	fi
	for _ in $(seq 50); do [ -S "$sock" ] && [ -s "$work/$who.pid" ] && break; sleep 0.1; done
	pids+=("$(cat "$work/$who.pid")")
}
stop() { kill "$(cat "$work/$1.pid")" 2>/dev/null; sleep 0.3; }

# one nbdcopy read of the whole export, in seconds
copy_once() {
	local t0 t1
	t0=$(date +%s.%N)
	nbdcopy "nbd+unix:///?socket=$1" null: || { echo 0; return; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc
}
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# Both servers run at once and the copies alternate (the host is shared:
# alternating spreads its noise over both); best of 3 each.
for fmt in raw qcow2; do
	start xvm $fmt "$work/in.$fmt"
	start qemu $fmt "$work/in.$fmt"
	x= q=
	for _ in 1 2 3; do
		x=$(min "$x" "$(copy_once "$work/xvm.sock")")
		q=$(min "$q" "$(copy_once "$work/qemu.sock")")
	done
	stop xvm
	stop qemu
	x=$(printf '%.3f' "$x"); q=$(printf '%.3f' "$q")
	echo "bench: nbd-read-$fmt-1G xvm=${x}s peer=${q}s ratio=$(awk -v a="$x" -v b="$q" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
done
