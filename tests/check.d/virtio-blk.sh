#!/usr/bin/env bash
# virtio-blk (and virtio-rng) end to end on the software CPU, with Debian's
# kernel: boot 1 mounts an ext4 image (built with mke2fs -d, no root) from
# a virtio-blk disk on PCI, writes a file and checks the disk serial; a
# read-only disk refuses writes (and its image stays unchanged); a disk on
# virtio-mmio (found through ACPI) mounts; /dev/hwrng gives bytes from
# virtio-rng. Boot 2 reads the file back unchanged.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/check.d/virtio-common.inc
need mke2fs
need debugfs
emu_check
guest_kit_find

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"
echo "seed file from the host" >"$work/root/seed"
mke2fs -q -F -t ext4 -d "$work/root" "$work/disk.img" 32M >/dev/null || { echo "mke2fs failed"; exit 1; }
cp "$work/disk.img" "$work/mmio.img"
head -c 1048576 /dev/urandom >"$work/ro.img"
ro_sum=$(sha256sum <"$work/ro.img")
token="xvm-$$-$RANDOM$RANDOM"

# Devices are found by serial, whatever order the kernel names them in.
find_dev='dev() { for d in /sys/block/vd*; do [ $(cat $d/serial) = $1 ] && echo /dev/${d##*/}; done; }'
cmd1="modprobe virtio_pci; modprobe virtio_mmio; modprobe virtio_blk; modprobe ext4; modprobe virtio_rng; mkdir -p /mnt /m2; $find_dev; V=\$(dev xvm-serial-1); R=\$(dev xvm-ro); M=\$(dev xvm-mmio); echo DEVS=\$V,\$R,\$M; mount \$V /mnt && cat /mnt/seed && echo $token >/mnt/probe && sync && umount /mnt && echo XVM-WRITE-DONE; echo RO=\$(cat /sys/block/\${R#/dev/}/ro); dd if=/dev/zero of=\$R bs=4096 count=1 oflag=direct conv=fsync 2>/dev/null && echo XVM-RO-WROTE || echo XVM-RO-REFUSED; test \${#M} -gt 0 && mount -o ro \$M /m2 && echo MMIO=\$(cat /m2/seed | tr ' ' _); echo CUR=\$(cat /sys/class/misc/hw_random/rng_current); echo RNG=\$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \\n')"
guest_run "$work/boot1.log" "$cmd1" \
	--disk "path=$work/disk.img,serial=xvm-serial-1" \
	--disk "path=$work/ro.img,format=raw,readonly=on,serial=xvm-ro" \
	--disk "path=$work/mmio.img,transport=mmio,serial=xvm-mmio" --rng
log=$work/boot1.log
fail() { echo "$*"; grep -a -A40 "XVM-CMD START" "$log" | head -n 40; exit 1; }
grep -q "XVM-CMD END" "$log" || fail "boot 1 did not finish"
grep -q "seed file from the host" "$log" || fail "the seed file was not read from the PCI disk"
grep -q "XVM-WRITE-DONE" "$log" || fail "boot 1 did not write the file"
grep -q "^RO=1" "$log" || fail "the read-only disk is not read-only in the guest"
grep -q "XVM-RO-REFUSED" "$log" || fail "the read-only disk accepted a write"
[ "$ro_sum" = "$(sha256sum <"$work/ro.img")" ] || fail "the read-only image changed"
grep -q "MMIO=seed_file_from_the_host" "$log" || fail "the virtio-mmio disk was not usable"
grep -q "CUR=virtio_rng" "$log" || fail "virtio_rng is not the guest's hw_random source"
hex=$(sed -n 's/^RNG=\([0-9a-f]*\).*/\1/p' "$log" | head -n 1)
[ ${#hex} -eq 64 ] || fail "read ${#hex} hex digits from /dev/hwrng, want 64"
debugfs -R "cat /probe" "$work/disk.img" 2>/dev/null | grep -q "$token" || fail "the file is not in the image after boot 1"

log=$work/boot2.log
guest_run "$log" "modprobe virtio_pci; modprobe virtio_blk; modprobe ext4; mkdir -p /mnt; mount -o ro /dev/vda /mnt && echo READBACK=\$(cat /mnt/probe)" \
	--disk "path=$work/disk.img,serial=xvm-serial-1"
grep -q "READBACK=$token" "$log" || fail "boot 2 did not read the file back"
echo "virtio-blk: write + read back across boots, serial, read-only, virtio-mmio; virtio-rng gave $hex"
