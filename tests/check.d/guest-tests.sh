#!/usr/bin/env bash
# Runs every guest test kernel (tests/guest/) on every engine usable here:
# 16-bit real mode, 32-bit protected mode, 64-bit long mode, port I/O and
# MMIO, the UART, timer interrupts through the IOAPIC/LAPIC, SMP start-up
# with INIT/SIPI, exceptions. A test passes when it prints PASS on COM1 and
# exits through debug-exit with code 0x10 (xvm exit status 33).
set -u
source "$(dirname "$0")/guest-common.inc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name: extra xvm options
tests=(
	"mode16:"
	"mode32:"
	"long_mode:"
	"portio:"
	"serial:"
	"timer:"
	"exceptions:"
	"smp:--cpus 1 --append cpus=1"
	"smp:--cpus 2 --append cpus=2"
	"smp:--cpus 4 --append cpus=4"
	"mode16.bin:"
	"long_mode.bin:"
	"smp.bin:--cpus 3 --append cpus=3"
)
fails=0 runs=0
for accel in "${ENGINES[@]}"; do
	for entry in "${tests[@]}"; do
		name=${entry%%:*}
		opts=${entry#*:}
		# NAME.elf by default; NAME.bin is the a.out-kludge image.
		image=$name
		[ "${name%.bin}" != "$name" ] || image=$name.elf
		# shellcheck disable=SC2086 # opts is a word list on purpose
		guest_run "$accel" "$tmp/out" "$tmp/err" --kernel "$GUEST_DIR/$image" $opts
		rc=$?
		guest_require_loader "$tmp/err"
		runs=$((runs + 1))
		label="[$accel] $name${opts:+ ($opts)}"
		if [ $rc -eq 33 ] && grep -q "^PASS" "$tmp/out"; then
			echo "ok   $label"
		else
			fails=$((fails + 1))
			echo "FAIL $label: exit status $rc (want 33)"
			sed 's/^/       guest| /' "$tmp/out" | tail -n 15
			sed 's/^/       xvm| /' "$tmp/err" | tail -n 10
		fi
	done
done

# The serial test's output block must arrive intact, byte for byte.
for accel in "${ENGINES[@]}"; do
	guest_run "$accel" "$tmp/out" "$tmp/err" --kernel "$GUEST_DIR/serial.elf"
	expect=$(for i in $(seq 0 63); do
		printf '%02u: the quick brown fox jumps over the lazy dog %08x\n' "$i" $(((i * 0x9E3779B9) & 0xFFFFFFFF))
	done)
	got=$(sed -n '/^serial test output begins$/,/^serial test output ends$/p' "$tmp/out" | sed '1d;$d')
	runs=$((runs + 1))
	if [ "$got" = "$expect" ]; then
		echo "ok   [$accel] serial output intact (64 lines)"
	else
		fails=$((fails + 1))
		echo "FAIL [$accel] serial output differs from what the guest wrote"
		diff <(echo "$expect") <(echo "$got") | head -n 10
	fi
done

echo "$runs runs on: ${ENGINES[*]}, $fails failed"
[ $fails -eq 0 ]
