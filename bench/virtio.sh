#!/usr/bin/env bash
# virtio throughput: guest dd on virtio-blk (256 MiB sequential read and
# write, O_DIRECT) and guest->host TCP through user-mode networking, on
# xvm's software CPU and on QEMU TCG with the same kernel, initramfs,
# image and devices, in the same run. Prints "bench: NAME xvm=.. peer=..
# ratio=R" with ratio = peer throughput / xvm throughput (< 1: xvm faster).
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.." || exit 1
BUILD=$(cd "$BUILD" && pwd)
XVM=${XVM:-$BUILD/xvm}
. tests/check.d/virtio-common.inc
skip() { echo "virtio bench skipped: $*"; exit 0; }
(guest_kit_find) >/dev/null || skip "no test guest (Debian kernel, static busybox)"
guest_kit_find
emu_check
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (make deps)"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
truncate -s 300M "$work/disk.img"

# Elapsed seconds inside the guest from /proc/uptime around the command.
timed() { echo "t0=\$(cut -d' ' -f1 /proc/uptime); $1; t1=\$(cut -d' ' -f1 /proc/uptime); echo $2=\$t0:\$t1"; }
blk_cmd="modprobe virtio_pci; modprobe virtio_blk; $(timed 'dd if=/dev/zero of=/dev/vda bs=1M count=256 oflag=direct 2>/dev/null' WRITE); $(timed 'dd if=/dev/vda of=/dev/null bs=1M count=256 iflag=direct 2>/dev/null' READ)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A sink on the host that reports bytes and seconds of one connection.
sink() {
	python3 - "$1" "$2" <<'PY' &
import socket, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(1); srv.settimeout(600)
c, _ = srv.accept(); t0 = time.time(); n = 0
while True:
    d = c.recv(1 << 16)
    if not d: break
    n += len(d)
open(sys.argv[2], "w").write("%d %f\n" % (n, time.time() - t0))
PY
	pids+=($!)
}
net_cmd() { echo "modprobe virtio_pci; modprobe virtio_net; ip link set eth0 up; udhcpc -i eth0 -q -n -t 5 >/dev/null; dd if=/dev/zero bs=64k count=1024 2>/dev/null | nc 10.0.2.2 $1"; }

mbps() { awk -v s="$1" 'BEGIN { split(s, a, ":"); d = a[2] - a[1]; if (d <= 0) d = 0.01; printf "%.1f", 256 / d }'; }
extract() { sed -n "s/.*$2=\([0-9.]*:[0-9.]*\).*/\1/p" "$1" | head -n 1; }

run_xvm() {
	GUEST_TIMEOUT=600 guest_run "$1" "$2" "${@:3}"
}
run_qemu() {
	local log=$1 cmd=$2; shift 2
	timeout 600 qemu-system-x86_64 -accel tcg -m 256M -nographic -no-reboot \
		-kernel "$KERNEL" -initrd "$INITRD" \
		-append "console=ttyS0 quiet panic=-1 xvm.cmd=\"$cmd; poweroff -f\"" "$@" >"$log" 2>&1 </dev/null
}

declare -A res
run_xvm "$work/xvm-blk.log" "$blk_cmd" --disk "path=$work/disk.img,format=raw"
run_qemu "$work/qemu-blk.log" "$blk_cmd" -drive "file=$work/disk.img,format=raw,if=virtio,cache=none"
for op in WRITE READ; do
	x=$(extract "$work/xvm-blk.log" $op); q=$(extract "$work/qemu-blk.log" $op)
	[ -n "$x" ] && [ -n "$q" ] || { echo "bench: virtio-blk-${op,,} failed (see logs)"; tail -n 5 "$work/xvm-blk.log"; continue; }
	xm=$(mbps "$x"); qm=$(mbps "$q")
	echo "bench: virtio-blk-${op,,}-256M xvm=${xm}MB/s peer=${qm}MB/s ratio=$(awk -v a="$qm" -v b="$xm" 'BEGIN{printf "%.2f", a/b}')"
done

for who in xvm qemu; do
	port=$(free_port)
	sink "$port" "$work/$who-net.res"
	if [ $who = xvm ]; then
		run_xvm "$work/xvm-net.log" "$(net_cmd "$port")" --net user
	else
		run_qemu "$work/qemu-net.log" "$(net_cmd "$port")" -netdev user,id=n0 -device virtio-net-pci,netdev=n0
	fi
	sleep 1
	if [ -s "$work/$who-net.res" ]; then
		res[$who]=$(awk '{ printf "%.1f", $1 / 1048576 / ($2 > 0 ? $2 : 0.01) }' "$work/$who-net.res")
	fi
done
if [ -n "${res[xvm]:-}" ] && [ -n "${res[qemu]:-}" ]; then
	echo "bench: virtio-net-user-tcp-64M xvm=${res[xvm]}MB/s peer=${res[qemu]}MB/s ratio=$(awk -v a="${res[qemu]}" -v b="${res[xvm]}" 'BEGIN{printf "%.2f", a/b}')"
else
	echo "bench: virtio-net-user-tcp failed (xvm=${res[xvm]:-none} qemu=${res[qemu]:-none})"
fi
