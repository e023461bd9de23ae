#!/usr/bin/env bash
# Differential tests of the software CPU (--accel emu) against the host
# CPU: every instruction form of tests/diff/forms.c on random registers,
# flags, XMM registers and memory, natively and emulated; they must agree
# on registers, defined flags, memory and faults. Bounded to about a minute;
# run build/emu-diff -n 5000 by hand for a deeper search.
# First the coverage gate: every encoding the emulator implements has a
# form, or an exclusion (tests/diff/excluded.c) naming an existing unit test.
set -u
: "${BUILD:?}"
if [ "$(uname -m)" != x86_64 ]; then
	echo "the host CPU is not x86-64: no native oracle"
	exit 77
fi
make -s BUILD="$BUILD" "$BUILD/emu-diff" || exit 1
here=$(cd "$(dirname "$0")/../.." && pwd)
missing=0
while IFS=: read -r file fn; do
	if ! grep -q "cmocka_unit_test($fn)" "$here/tests/unit/$file" 2>/dev/null; then
		echo "tests/diff/excluded.c names $file:$fn, which is not a unit test"
		missing=1
	fi
done < <(grep -o '"test_[a-z0-9_]*\.c:test_[a-z0-9_]*"' "$here/tests/diff/excluded.c" | tr -d '"' | sort -u)
[ "$missing" = 0 ] || exit 1
timeout 60 "$BUILD/emu-diff" --coverage || exit 1
n=${EMU_DIFF_ITERATIONS:-400}
# with the fast paths the decoder picks, with the generic handlers, and
# through the JIT (each form compiled at its first run)
timeout 300 "$BUILD/emu-diff" -n "$n" && timeout 300 "$BUILD/emu-diff" -g -n "$n" &&
	timeout 300 "$BUILD/emu-diff" -j -n "$n"
