#!/usr/bin/env bash
# virtio-rng on the software CPU: the guest's hw_random picks virtio_rng and
# /dev/hwrng delivers bytes.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/check.d/virtio-common.inc
guest_kit_find
emu_check

log=$(mktemp)
trap 'rm -f "$log"' EXIT
guest_run "$log" "modprobe virtio_pci; modprobe virtio_rng; echo CUR=\$(cat /sys/class/misc/hw_random/rng_current); echo RNG=\$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')" --rng
grep -q "CUR=virtio_rng" "$log" || { echo "virtio_rng is not the current hw_random source"; tail -n 40 "$log"; exit 1; }
hex=$(sed -n 's/.*RNG=\([0-9a-f]*\).*/\1/p' "$log" | head -n 1)
[ ${#hex} -eq 64 ] || { echo "read ${#hex} hex digits from /dev/hwrng, want 64"; exit 1; }
[ "$hex" != "$(printf '0%.0s' $(seq 64))" ] || { echo "/dev/hwrng returned zeros"; exit 1; }
echo "virtio-rng: /dev/hwrng gave $hex"
