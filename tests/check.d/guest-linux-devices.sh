#!/usr/bin/env bash
# The legacy devices under Debian's stock kernel (guest kit) on the
# software CPU, driven through the console: commands piped into stdin from
# the start reach the busybox shell on ttyS0 whole (the UART holds input
# until the driver listens), Linux finds a 16550A, the i8042 keyboard and
# mouse ports and the CMOS RTC, the RTC reads the host's UTC time, the
# UART, i8042 and RTC interrupt lines are wired, and `poweroff -f` (ACPI
# S5) ends xvm with status 0.
set -u
: "${XVM:?}" "${BUILD:?}"
kit="$BUILD/guest"
if [ ! -f "$kit/vmlinuz" ] || [ ! -f "$kit/initramfs.cpio.gz" ]; then
	echo "guest kit missing ($kit: run 'make guest')"
	exit 77
fi
if ! "$XVM" ok 2>&1 | grep -q "software CPU: available"; then
	echo "the software CPU is not available here"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/cmds" <<'EOS'
echo marker-$((6*7))
dmesg | grep -E 'ttyS0 at|serio: i8042|rtc_cmos.*registered'
echo hwclock=$(hwclock -r -u)
grep -E 'ttyS0|i8042|rtc0' /proc/interrupts
poweroff -f
EOS
timeout 300 "$XVM" run --accel emu --cpus 1 --memory 256M --console stdio \
	--kernel "$kit/vmlinuz" --initrd "$kit/initramfs.cpio.gz" \
	--append "console=ttyS0 quiet tsc=reliable" <"$tmp/cmds" >"$tmp/out" 2>"$tmp/err"
rc=$?
now=$(date -u +%s)
tr -d '\r' <"$tmp/out" >"$tmp/out.txt"

bad=""
[ $rc -eq 0 ] || bad="$bad exit status $rc (want 0 from ACPI S5);"
grep -q "^marker-42$" "$tmp/out.txt" || bad="$bad piped command did not reach the shell whole;"
grep -q "ttyS0 at I/O 0x3f8 (irq = 4.*is a 16550A" "$tmp/out.txt" || bad="$bad no 16550A on ttyS0;"
grep -q "serio: i8042 KBD port at 0x60,0x64 irq 1" "$tmp/out.txt" || bad="$bad no i8042 keyboard port;"
grep -q "serio: i8042 AUX port at 0x60,0x64 irq 12" "$tmp/out.txt" || bad="$bad no i8042 mouse port;"
grep -q "rtc_cmos.*registered as rtc0" "$tmp/out.txt" || bad="$bad rtc_cmos did not register;"
hw=$(sed -n 's/^hwclock=//p' "$tmp/out.txt" | cut -c1-24)
hw_s=$(date -u -d "$hw" +%s 2>/dev/null)
if [ -z "$hw_s" ] || [ $((now - hw_s)) -gt 60 ] || [ $((hw_s - now)) -gt 5 ]; then
	bad="$bad RTC time '$hw' is not the host's UTC time;"
fi
ttys_irqs=$(awk '/IO-APIC/ && $NF == "ttyS0" { print $2; exit }' "$tmp/out.txt")
[ -n "$ttys_irqs" ] && [ "$ttys_irqs" -gt 0 ] || bad="$bad no ttyS0 interrupts;"
grep -q "IO-APIC.*1-edge.*i8042" "$tmp/out.txt" || bad="$bad IRQ 1 not wired to i8042;"
grep -q "IO-APIC.*8-edge.*rtc0" "$tmp/out.txt" || bad="$bad IRQ 8 not wired to rtc0;"

if [ -n "$bad" ]; then
	echo "FAIL:$bad"
	tail -n 30 "$tmp/out.txt" | sed 's/^/  guest| /'
	tail -n 10 "$tmp/err" | sed 's/^/  xvm| /'
	exit 1
fi
echo "Linux drives COM1 (16550A, ${ttys_irqs} interrupts), i8042, the RTC ($hw) and powers off through S5"
