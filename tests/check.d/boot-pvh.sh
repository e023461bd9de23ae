#!/usr/bin/env bash
# The PVH entry end to end: the guest kit's vmlinux (Debian's kernel as an
# ELF, with its XEN_ELFNOTE_PHYS32_ENTRY note) booted through PVH
# (XVM_BOOT_PVH=1): 32-bit entry with hvm_start_info carrying the command
# line, the initramfs module, the memory map and the RSDP. The guest runs
# a command and powers off through ACPI (exit status 0).
set -u
: "${XVM:?}" "${BUILD:?}"
kit="$BUILD/guest"
if [ ! -f "$kit/vmlinux" ] || [ ! -f "$kit/initramfs.cpio.gz" ]; then
	echo "guest kit without vmlinux ($kit: run 'make guest')"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

start=$(date +%s)
XVM_BOOT_PVH=1 timeout 300 "$XVM" run -v --accel emu --memory 256M --console stdio \
	--kernel "$kit/vmlinux" --initrd "$kit/initramfs.cpio.gz" \
	--append "console=ttyS0 quiet tsc=reliable xvm.cmd=\"echo pvh-mem=\$(awk '/MemTotal/ {print \$2}' /proc/meminfo) tables=\$(ls /sys/firmware/acpi/tables)\"" \
	</dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
took=$(( $(date +%s) - start ))
tr -d '\r' <"$tmp/out" >"$tmp/out.txt"
bad=""
[ $rc -eq 0 ] || bad="$bad exit status $rc;"
grep -q "boot: PVH ELF" "$tmp/err" || bad="$bad not booted through PVH;"
grep -q "xvm-guest: init ready" "$tmp/out.txt" || bad="$bad no init banner (initrd module?);"
mem=$(sed -n 's/^pvh-mem=\([0-9]*\).*/\1/p' "$tmp/out.txt")
[ -n "$mem" ] && [ "$mem" -gt 153600 ] && [ "$mem" -le 262144 ] || bad="$bad MemTotal '$mem' kB (memory map);"
grep -q "tables=.*DSDT" "$tmp/out.txt" || bad="$bad no ACPI tables (RSDP);"
if [ -n "$bad" ]; then
	echo "FAIL:$bad"
	tail -n 30 "$tmp/out.txt"
	grep -v "debug: pio\|debug: mmio" "$tmp/err" | tail -n 10
	exit 1
fi
echo "ok: PVH boot of the kernel ELF to init and power-off in ${took}s"
