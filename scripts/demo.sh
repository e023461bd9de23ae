#!/usr/bin/env bash
# Boots the default guest (make guest) on this terminal: Debian's stock
# kernel with the busybox initramfs, to a shell on the serial console.
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
echo "demo: booting $(cat "$GUEST/kernel-version" 2>/dev/null || echo the guest kernel); Ctrl-a x quits"
exec "$XVM" run --accel "${XVM_ACCEL:-auto}" --memory "${XVM_MEMORY:-1G}" \
    --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initramfs.cpio.gz" \
    --append "console=ttyS0 earlyprintk=serial panic=-1 ${XVM_APPEND:-}" "$@"
