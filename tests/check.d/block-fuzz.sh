#!/usr/bin/env bash
# Bounded libFuzzer run of tests/fuzz/fuzz_qcow2_open.c (crafted qcow2
# headers and tables fed to open, read, status, check, write, repair),
# seeded with small images made by qemu-img and by us.
# FUZZ_SECONDS (default 60) bounds the run.
set -u
BUILD=${BUILD:-build}
SECS=${FUZZ_SECONDS:-60}
command -v clang >/dev/null || { echo "clang not installed (deps/block.list)"; exit 77; }
command -v qemu-img >/dev/null || { echo "qemu-img not installed (deps/bench.list)"; exit 77; }
F="$BUILD/fuzz/fuzz_qcow2_open"
make -s BUILD="$BUILD" "$F" >/dev/null || { echo "cannot build the fuzz target"; exit 1; }
F="$(cd "$(dirname "$F")" && pwd)/$(basename "$F")"
T=$(mktemp -d /tmp/xvm-fuzz-XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/corpus" "$T/work"
cd "$T/work"
seed() { # NAME qemu-img-create-options... (then some data)
	local name=$1; shift
	qemu-img create -q -f qcow2 "$@" "$T/corpus/$name" 1M >/dev/null 2>&1 || return 0
	qemu-io -c "write -P 0x61 0 12k" -c "write -z 64k 4k" -c "write -P 0x62 900k 1k" \
		"$T/corpus/$name" >/dev/null 2>&1 || true
}
seed c512 -o cluster_size=512
seed c4k -o cluster_size=4096
seed v2 -o cluster_size=512,compat=0.10
seed rb1 -o cluster_size=512,refcount_bits=1
seed rb64 -o cluster_size=512,refcount_bits=64
qemu-img create -q -f raw base.raw 1M
qemu-io -f raw -c "write -P 0x63 0 64k" base.raw >/dev/null
seed back -o cluster_size=512 -b "$T/work/base.raw" -F raw
qemu-img convert -c -O qcow2 -o cluster_size=512 base.raw "$T/corpus/zlib"
qemu-img convert -c -O qcow2 -o cluster_size=512,compression_type=zstd base.raw "$T/corpus/zstd"
cp "$T/corpus/c512" "$T/corpus/snap" && qemu-img snapshot -c s1 "$T/corpus/snap" &&
	qemu-io -c "write -P 0x64 0 2k" "$T/corpus/snap" >/dev/null
ls "$T/corpus" | wc -l | sed 's/^/seeds: /'
cd "$T"
"$F" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
	-print_final_stats=1 "$T/corpus" >"$T/log" 2>&1
rc=$?
grep -E "stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs" "$T/log"
if [ $rc -ne 0 ]; then
	echo "fuzzer found a problem (exit $rc):"
	grep -E "ERROR|SUMMARY|#[0-9]+ 0x" "$T/log" | head -n 30
	cp "$T"/crash-* "$T"/timeout-* "$T"/oom-* /tmp/ 2>/dev/null && echo "reproducer copied to /tmp"
	exit 1
fi
echo "1 passed, 0 failed"
