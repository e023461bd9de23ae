#!/usr/bin/env bash
# Runs every test `make check` knows: the unit tests (built with ASan and
# UBSan) and each executable tests/check.d/*.sh. A check exits 0 (pass),
# 77 (skipped; its last output line says why) or anything else (fail).
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
export XVM="$PWD/$BUILD/xvm" BUILD="$PWD/$BUILD"
# Decompressed kernels are cached in the build tree, not in $HOME.
export XVM_CACHE_DIR=${XVM_CACHE_DIR:-$BUILD/kernel-cache}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-600}
pass=0 fail=0 skip=0
failed=() skipped=()
logdir="$BUILD/test-logs"
mkdir -p "$logdir"

run_one() {
	local name=$1; shift
	local log="$logdir/$(echo "$name" | tr '/' '_').log"
	local t0=$(date +%s.%N)
	# No check may hang the run: each gets CHECK_TIMEOUT seconds (then
	# SIGTERM, and SIGKILL 10 s later) and fails with the reason logged.
	timeout -k 10 "$CHECK_TIMEOUT" "$@" >"$log" 2>&1
	local rc=$?
	[ $rc -eq 124 ] && echo "TIMEOUT: no result after ${CHECK_TIMEOUT}s" >>"$log"
	local dt=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
	case $rc in
	0)  pass=$((pass + 1)); printf 'PASS  %-40s %6ss\n' "$name" "$dt" ;;
	77) skip=$((skip + 1)); local why=$(tail -n 1 "$log")
	    skipped+=("$name: $why"); printf 'SKIP  %-40s %s\n' "$name" "$why" ;;
	*)  fail=$((fail + 1)); failed+=("$name")
	    printf 'FAIL  %-40s (exit %d, log %s)\n' "$name" "$rc" "$log"
	    tail -n 30 "$log" | sed 's/^/      | /' ;;
	esac
}

for t in "$BUILD"/unit/test_*; do
	[ -x "$t" ] || continue
	run_one "unit/$(basename "$t")" "$t"
done
for t in tests/check.d/*.sh; do
	[ -f "$t" ] || continue
	run_one "check/$(basename "$t" .sh)" bash "$t"
done

echo
if [ ${#skipped[@]} -gt 0 ]; then
	echo "skipped:"; printf '  %s\n' "${skipped[@]}"
fi
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed:"; printf '  %s\n' "${failed[@]}"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
