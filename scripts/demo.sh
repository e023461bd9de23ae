#!/usr/bin/env bash
# Boots the default guest (make guest) on this terminal: Debian's stock
# kernel with the busybox initramfs, switching to the kit's persistent
# ext4 root disk (virtio-blk) with user-mode networking (virtio-net,
# DHCP), to a shell on the serial console.
# Ctrl-a x quits; `poweroff -f` in the guest ends the VM.
# Extra arguments are passed to `xvm run` (e.g. --cpus 2).
set -euo pipefail
BUILD=${1:-build}
shift || true
XVM=$BUILD/xvm
GUEST=$BUILD/guest
for f in "$XVM" "$GUEST/vmlinuz" "$GUEST/initramfs.cpio.gz"; do
    [ -e "$f" ] || { echo "demo: $f is missing (run: make all guest)" >&2; exit 1; }
done
# The kit's ext4 root disk (persistent) and user-mode networking, when
# the kit has one (XVM_DEMO_DISK=0 boots from the initramfs alone).
extra=() root=""
if [ -f "$GUEST/rootfs.ext4" ] && [ "${XVM_DEMO_DISK:-1}" != 0 ]; then
    extra=(--disk "path=$GUEST/rootfs.ext4" --net user)
    root="xvm.root=/dev/vda"
fi
echo "demo: booting $(cat "$GUEST/kernel-version" 2>/dev/null || echo the guest kernel); Ctrl-a x quits, poweroff -f ends the VM"
exec "$XVM" run --accel "${XVM_ACCEL:-auto}" --memory "${XVM_MEMORY:-1G}" \
    --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initramfs.cpio.gz" "${extra[@]}" \
    --append "console=ttyS0 earlyprintk=serial panic=-1 $root ${XVM_APPEND:-}" "$@"
