#!/usr/bin/env bash
# A Multiboot kernel prints to COM1 and its debug-exit status becomes xvm's
# exit status ((V << 1) | 1), for the ELF and the a.out-kludge (flat)
# image of the same kernel; the command line (--append) reaches it; the
# output arrives complete when the guest prints a lot.
set -u
source "$(dirname "$0")/guest-common.inc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fails=0 runs=0
check() {
	local label=$1 want=$2 rc=$3
	runs=$((runs + 1))
	if [ "$rc" -eq "$want" ]; then
		echo "ok   $label: exit status $rc"
	else
		fails=$((fails + 1))
		echo "FAIL $label: exit status $rc, want $want"
		sed 's/^/       guest| /' "$tmp/out" | tail -n 5
		sed 's/^/       xvm| /' "$tmp/err" | tail -n 5
	fi
}

for accel in "${ENGINES[@]}"; do
	for fmt in elf bin; do
		for v in 0 1 0x10 0x2a 0x7f; do
			guest_run "$accel" "$tmp/out" "$tmp/err" --kernel "$GUEST_DIR/hello.$fmt" \
				--append "exit=$v"
			rc=$?
			guest_require_loader "$tmp/err"
			check "[$accel] hello.$fmt exit=$v" $((((v << 1) | 1) & 255)) $rc
			if ! grep -q "^hello from the xvm guest test kernel" "$tmp/out" ||
			   ! grep -q "^cmdline: \[.*exit=$v.*\]" "$tmp/out"; then
				fails=$((fails + 1))
				echo "FAIL [$accel] hello.$fmt: greeting or command line missing on COM1"
				head -n 3 "$tmp/out" | sed 's/^/       guest| /'
			fi
		done
	done
	# 2000 lines (about 100 KiB): all of them, in order.
	guest_run "$accel" "$tmp/out" "$tmp/err" --kernel "$GUEST_DIR/hello.elf" --append "lines=2000"
	check "[$accel] hello lines=2000" 33 $?
	n=$(grep -c "^line [0-9]\{5\} abcdefghijklmnopqrstuvwxyz0123456789$" "$tmp/out")
	last=$(grep "^line " "$tmp/out" | tail -n 1)
	runs=$((runs + 1))
	if [ "$n" -eq 2000 ] && [ "$last" = "line 01999 abcdefghijklmnopqrstuvwxyz0123456789" ]; then
		echo "ok   [$accel] 2000 lines of COM1 output intact"
	else
		fails=$((fails + 1))
		echo "FAIL [$accel] COM1 output: $n intact lines of 2000, last '$last'"
	fi
	# --console file=PATH gets the same bytes.
	timeout 120 "$XVM" run --accel "$accel" --memory 64M --debug-exit --no-reboot \
		--console "file=$tmp/console.log" --kernel "$GUEST_DIR/hello.elf" --append "exit=0x10" \
		</dev/null >"$tmp/out" 2>"$tmp/err"
	check "[$accel] --console file" 33 $?
	runs=$((runs + 1))
	if grep -q "^PASS" "$tmp/console.log" && [ ! -s "$tmp/out" ]; then
		echo "ok   [$accel] --console file=PATH has the output, stdout has none"
	else
		fails=$((fails + 1))
		echo "FAIL [$accel] --console file=PATH: output went elsewhere"
	fi
done

echo "$runs checks on: ${ENGINES[*]}, $fails failed"
[ $fails -eq 0 ]
