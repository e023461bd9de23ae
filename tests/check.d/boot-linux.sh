#!/usr/bin/env bash
# The boot loader end to end with Debian's stock kernel (guest kit) on the
# software CPU: a bzImage decompressed on the host, two --initrd files
# concatenated (the second adds a file to the root), the command line, the
# e820 memory, the ACPI tables (FADT, MADT with both vCPUs, MCFG, DSDT:
# PCI host bridge, COM1, RTC, i8042), and a reboot through the FADT reset
# register, which --no-reboot turns into exit status 0.
set -u
: "${XVM:?}" "${BUILD:?}"
kit="$BUILD/guest"
if [ ! -f "$kit/vmlinuz" ] || [ ! -f "$kit/initramfs.cpio.gz" ]; then
	echo "guest kit missing ($kit: run 'make guest')"
	exit 77
fi
command -v cpio >/dev/null || { echo "cpio is not installed (make deps)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Second initrd: one file, archived without root.
mkdir -p "$tmp/extra"
echo "second-initrd-$$" > "$tmp/extra/xvm-extra"
(cd "$tmp/extra" && echo xvm-extra | cpio -o -H newc -R 0:0 --quiet) > "$tmp/extra.cpio"

# No double quotes inside: the kernel's parser would split the value.
cmd='echo extra=$(cat /xvm-extra); echo cpus=$(grep -c ^processor /proc/cpuinfo); echo mem=$(awk '"'"'/MemTotal/ {print $2}'"'"' /proc/meminfo); echo tables=$(ls /sys/firmware/acpi/tables); echo pnp=$(cat /sys/bus/pnp/devices/*/id); echo pci=$(ls /sys/bus/pci/devices); echo cmdline=$(cat /proc/cmdline); reboot -f'

start=$(date +%s)
timeout 300 "$XVM" run --accel emu --cpus 2 --memory 256M --console stdio --no-reboot \
	--kernel "$kit/vmlinuz" --initrd "$kit/initramfs.cpio.gz,$tmp/extra.cpio" \
	--append "console=ttyS0 quiet tsc=reliable xvm-marker=42 xvm.cmd=\"$cmd\"" \
	</dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
took=$(( $(date +%s) - start ))
tr -d '\r' <"$tmp/out" >"$tmp/out.txt"
if grep -q "cannot boot\|not usable\|not available" "$tmp/err"; then
	echo "the emu engine cannot boot a guest here: $(tail -n 1 "$tmp/err")"
	exit 77
fi

bad=""
[ $rc -eq 0 ] || bad="$bad exit status $rc (want 0 from a reboot with --no-reboot);"
grep -q "xvm-guest: init ready" "$tmp/out.txt" || bad="$bad no init banner;"
grep -q "^extra=second-initrd-$$" "$tmp/out.txt" || bad="$bad second initrd missing;"
grep -q "^cpus=2\$" "$tmp/out.txt" || bad="$bad cpu count;"
mem=$(sed -n 's/^mem=//p' "$tmp/out.txt")
# 256 MiB less the kernel's own reservations: between 150 and 256 MiB.
[ -n "$mem" ] && [ "$mem" -gt 153600 ] && [ "$mem" -le 262144 ] || bad="$bad MemTotal '$mem' kB;"
for t in FACP APIC MCFG DSDT; do
	grep -q "^tables=.*\b$t\b" "$tmp/out.txt" || bad="$bad ACPI table $t missing;"
done
for id in PNP0501 PNP0b00 PNP0303; do
	grep -qi "^pnp=.*$id" "$tmp/out.txt" || bad="$bad ACPI device $id missing;"
done
grep -q "^pci=0000:00:00.0" "$tmp/out.txt" || bad="$bad no PCI host bridge;"
grep -q "^cmdline=.*xvm-marker=42" "$tmp/out.txt" || bad="$bad command line;"

if [ -n "$bad" ]; then
	echo "FAIL:$bad"
	tail -n 30 "$tmp/out.txt"
	tail -n 10 "$tmp/err"
	exit 1
fi
echo "ok: bzImage booted (host decompression, 2 initrds, 2 vCPUs, ACPI tables and devices) and rebooted through the reset register in ${took}s"
