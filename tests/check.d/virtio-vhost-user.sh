#!/usr/bin/env bash
# Our virtio device models under a real Linux driver, today: QEMU (TCG)
# provides the PCI transport and hands the virtqueues to xvm's virtio-blk
# and virtio-rng over vhost-user (tests/vhost/vhost_user_dev.c, built with
# ASan/UBSan). Debian's stock kernel loads virtio_pci + virtio_blk and
# writes/reads back/discards/reads in parallel through our ring and
# request code; virtio_rng reads /dev/hwrng. Needs qemu-system-x86_64, a
# static busybox and Debian's kernel package (downloaded once with
# apt-get into $BUILD/virtio-kit); skipped when they are missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
skip() { echo "$*"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (make deps)"
qemu-system-x86_64 -device help 2>/dev/null | grep -q vhost-user-blk-pci || skip "this QEMU has no vhost-user-blk-pci"
[ -f "$BUILD/libxvm-san.a" ] || skip "build/libxvm-san.a missing (make unit)"

. tests/check.d/virtio-kit.inc
kit_kernel

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT

# The harness, against the sanitizer build of our library.
gcc -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -Isrc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -pthread \
	-o "$work/vhost_user_dev" tests/vhost/vhost_user_dev.c "$BUILD/libxvm-san.a" \
	$(pkg-config --libs slirp jansson zlib libzstd liblzma liblz4 liburing libseccomp) -lm \
	|| { echo "cannot build the vhost-user harness"; exit 1; }

# A tiny initramfs: busybox, the modules and this test's init.
ir=$work/ir
mkdir -p "$ir"
cat >"$ir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mod/order); do insmod /mod/$m.ko 2>/dev/null; done
sleep 1
echo "=== TEST START"
if [ -e /dev/vda ]; then
	echo "SERIAL=$(cat /sys/block/vda/serial) SIZE=$(cat /sys/block/vda/size)"
	dd if=/dev/urandom of=/tmp/pat bs=1M count=8 2>/dev/null
	echo "PAT=$(md5sum /tmp/pat | cut -c1-32)"
	dd if=/tmp/pat of=/dev/vda bs=1M count=8 oflag=direct 2>/dev/null
	echo "BACK=$(dd if=/dev/vda bs=1M count=8 iflag=direct 2>/dev/null | md5sum | cut -c1-32)"
	dd if=/tmp/pat of=/dev/vda bs=4k seek=5000 count=2048 2>/dev/null; sync; echo 3 >/proc/sys/vm/drop_caches
	echo "BACK2=$(dd if=/dev/vda bs=4k skip=5000 count=2048 2>/dev/null | md5sum | cut -c1-32)"
	blkdiscard -o 0 -l 1048576 /dev/vda && echo "DISCARDED=$(dd if=/dev/vda bs=1M count=1 iflag=direct 2>/dev/null | md5sum | cut -c1-32)"
	for i in 1 2 3 4 5 6 7 8; do dd if=/dev/vda of=/dev/null bs=64k count=64 skip=$((i*64)) iflag=direct 2>/dev/null & done
	wait; echo PARALLEL-DONE
fi
if [ -e /dev/hwrng ]; then
	echo "CUR=$(cat /sys/class/misc/hw_random/rng_current)"
	echo "RNG=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
fi
echo "=== TEST END"
poweroff -f
INIT
kit_initrd "$work/initrd.gz" "$ir/init"

# boot LOG DEVICE-ARGS...: QEMU with its guest RAM shared with the harness.
boot() {
	local log=$1; shift
	timeout 150 qemu-system-x86_64 -accel tcg -m 256M -nographic -no-reboot \
		-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
		-chardev socket,id=c0,path="$work/sock" "$@" \
		-kernel "$KIT/vmlinuz" -initrd "$work/initrd.gz" -append "console=ttyS0 quiet panic=-1" \
		>"$log" 2>&1 </dev/null
}
# serve KIND ARGS...: starts the harness and waits for its socket.
serve() {
	rm -f "$work/sock"
	"$work/vhost_user_dev" "$work/sock" "$@" >"$work/harness-$1.log" 2>&1 &
	harness=$!
	pids+=("$harness")
	for _ in $(seq 50); do [ -S "$work/sock" ] && return 0; sleep 0.1; done
	echo "harness did not start"; cat "$work/harness-$1.log"; exit 1
}

truncate -s 64M "$work/disk.img"
serve blk "$work/disk.img"
boot "$work/blk.log" -device vhost-user-blk-pci,chardev=c0,num-queues=1
wait "$harness" || { echo "harness failed"; tail -n 30 "$work/harness-blk.log"; exit 1; }
grep -q "=== TEST END" "$work/blk.log" || { echo "guest did not finish"; tail -n 30 "$work/blk.log"; exit 1; }
pat=$(sed -n 's/^PAT=\(.*\)/\1/p' "$work/blk.log" | tr -d '\r')
zero=$(head -c 1048576 /dev/zero | md5sum | cut -c1-32)
grep -q "SERIAL=xvm-vhost SIZE=131072" "$work/blk.log" || { echo "serial/capacity wrong"; grep -a SERIAL "$work/blk.log"; exit 1; }
grep -q "BACK=$pat" "$work/blk.log" || { echo "O_DIRECT read-back mismatch"; exit 1; }
grep -q "BACK2=$pat" "$work/blk.log" || { echo "buffered read-back mismatch"; exit 1; }
grep -q "DISCARDED=$zero" "$work/blk.log" || { echo "discard did not zero the range"; exit 1; }
grep -q "PARALLEL-DONE" "$work/blk.log" || { echo "parallel reads did not finish"; exit 1; }
# The host file holds what the guest wrote (past the discarded first MiB).
cmp -s <(dd if="$work/disk.img" bs=1M skip=1 count=7 2>/dev/null) <(head -c 7340032 /dev/zero) &&
	{ echo "the guest's writes are not in the image"; exit 1; }

serve rng
boot "$work/rng.log" -device vhost-user-rng-pci,chardev=c0
wait "$harness" || { echo "harness failed"; tail -n 30 "$work/harness-rng.log"; exit 1; }
grep -q "CUR=virtio_rng" "$work/rng.log" || { echo "virtio_rng not used"; tail -n 30 "$work/rng.log"; exit 1; }
hex=$(sed -n 's/^RNG=\([0-9a-f]*\).*/\1/p' "$work/rng.log" | head -n 1)
[ ${#hex} -eq 64 ] || { echo "read ${#hex} hex digits from /dev/hwrng"; exit 1; }
echo "Linux virtio_blk and virtio_rng on our device models: all pass"
