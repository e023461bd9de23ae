#!/usr/bin/env bash
# virtio-blk end to end on the software CPU: the Debian kernel loads
# virtio_pci/virtio_blk, mounts an ext4 image (built with mke2fs -d, no
# root), writes a file and powers off; a second boot reads it back; a
# read-only disk refuses writes; the same disk works on virtio-mmio.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/check.d/virtio-common.inc
need mke2fs
guest_kit_find
emu_check

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"
echo "seed file from the host" >"$work/root/seed"
mke2fs -q -F -t ext4 -d "$work/root" "$work/disk.img" 64M >/dev/null || { echo "mke2fs failed"; exit 1; }
token="xvm-$$-$RANDOM$RANDOM"
mods="modprobe virtio_pci; modprobe virtio_blk; modprobe ext4; mkdir -p /mnt"

# 1: write.
guest_run "$work/boot1.log" "$mods; mount /dev/vda /mnt && cat /mnt/seed && echo $token >/mnt/probe && sync && umount /mnt && echo XVM-WRITE-DONE; echo SERIAL=\$(cat /sys/block/vda/serial)" \
	--disk "path=$work/disk.img,serial=xvm-serial-1"
grep -q "XVM-WRITE-DONE" "$work/boot1.log" || { echo "first boot did not write the file"; tail -n 40 "$work/boot1.log"; exit 1; }
grep -q "seed file from the host" "$work/boot1.log" || { echo "seed file not read"; exit 1; }
grep -q "SERIAL=xvm-serial-1" "$work/boot1.log" || { echo "disk serial not visible in the guest"; exit 1; }

# 2: read back (the host sees the file too).
debugfs -R "cat /probe" "$work/disk.img" 2>/dev/null | grep -q "$token" || { echo "file not on the image after boot 1"; exit 1; }
guest_run "$work/boot2.log" "$mods; mount -o ro /dev/vda /mnt && echo READBACK=\$(cat /mnt/probe)" \
	--disk "path=$work/disk.img"
grep -q "READBACK=$token" "$work/boot2.log" || { echo "second boot did not read the file back"; tail -n 40 "$work/boot2.log"; exit 1; }

# 3: read-only disk refuses writes, image unchanged.
before=$(sha256sum <"$work/disk.img")
guest_run "$work/boot3.log" "$mods; cat /sys/block/vda/ro; dd if=/dev/zero of=/dev/vda bs=4096 count=1 oflag=direct conv=fsync 2>/dev/null && echo XVM-RO-WROTE || echo XVM-RO-REFUSED" \
	--disk "path=$work/disk.img,readonly=on"
grep -q "XVM-RO-REFUSED" "$work/boot3.log" || { echo "read-only disk accepted a write"; tail -n 40 "$work/boot3.log"; exit 1; }
[ "$before" = "$(sha256sum <"$work/disk.img")" ] || { echo "read-only image changed"; exit 1; }

# 4: virtio-mmio transport. Debian's kernel finds virtio-mmio devices only
# through ACPI (LNRO0005), not the command line: when the guest sees one,
# the disk on it must work.
guest_run "$work/boot4.log" "modprobe virtio_mmio; modprobe virtio_blk; modprobe ext4; mkdir -p /mnt; ls /sys/bus/platform/drivers/virtio-mmio/ | grep -q -e LNRO -e virtio && echo MMIO-FOUND; mount -o ro /dev/vda /mnt && echo MMIO=\$(cat /mnt/probe)" \
	--disk "path=$work/disk.img,transport=mmio"
if grep -q "MMIO-FOUND" "$work/boot4.log"; then
	grep -q "MMIO=$token" "$work/boot4.log" || { echo "virtio-mmio disk found but not usable"; tail -n 40 "$work/boot4.log"; exit 1; }
	mmio="and mmio"
else
	mmio="(virtio-mmio not discovered by this kernel: no ACPI LNRO0005 entries)"
fi
echo "virtio-blk: write, read back, read-only, serial $mmio pass"
