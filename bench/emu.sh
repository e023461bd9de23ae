#!/usr/bin/env bash
# The software CPU against QEMU TCG, same kernel and initramfs (the guest
# kit), same run:
#   boot     wall time from start to the init banner ("xvm-guest: init ready")
#   sha256   guest time of busybox sha256sum over a fixed generated input
#   gzip     guest time of busybox gzip -c over the same input
# The input (EMU_BENCH_MB MiB, default 64) is generated in the guest by seq,
# so both engines hash the same bytes. Prints "bench: NAME xvm=.. peer=..
# ratio=R" (ratio = xvm time / QEMU time; below 1 means xvm is faster).
# Standalone: bash bench/emu.sh [BUILD]
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.." || exit 1
BUILD=$(cd "$BUILD" && pwd)
XVM=$BUILD/xvm
KERNEL=$BUILD/guest/vmlinuz
INITRD=$BUILD/guest/initramfs.cpio.gz
MB=${EMU_BENCH_MB:-64}
skip() { echo "emu bench skipped: $*"; exit 0; }
[ -x "$XVM" ] || skip "$XVM not built (make)"
[ -f "$KERNEL" ] && [ -f "$INITRD" ] || skip "guest kit missing (make guest)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (make deps)"
command -v python3 >/dev/null || skip "python3 not installed"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Guest command: generate the input, then time each tool with /proc/uptime.
lines=$((MB * 1024 * 1024 / 8))
timed() { echo "t0=\$(cut -d' ' -f1 /proc/uptime); $1; t1=\$(cut -d' ' -f1 /proc/uptime); echo $2=\$t0:\$t1"; }
cmd="seq 10000000 $((10000000 + lines)) | head -c $((MB * 1024 * 1024)) > /tmp/in; $(timed 'sha256sum /tmp/in > /tmp/sum' SHA); $(timed 'gzip -c /tmp/in > /dev/null' GZIP); echo SUM=\$(cut -c1-16 /tmp/sum)"

# run NAME COMMAND...: runs it, records the banner time and the output.
run() {
	local name=$1; shift
	python3 - "$work/$name.log" "$work/$name.boot" "$@" <<'PY'
import subprocess, sys, time
log, boot, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
t0 = time.time()
p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
seen = None
with open(log, "wb") as f:
    for line in p.stdout:
        f.write(line)
        if seen is None and b"xvm-guest: init ready" in line:
            seen = time.time() - t0
p.wait()
open(boot, "w").write("%.2f\n" % (seen if seen is not None else -1))
PY
}

append="console=ttyS0 quiet tsc=reliable panic=-1 xvm.cmd=\"$cmd\""
# xvm keeps host-decompressed kernels in a cache (docs/boot.md): a user's
# second boot of a kernel is the common case, so warm it up first (the
# VM is stopped after the kernel is loaded and the cache written).
timeout -s TERM 8 "$XVM" run --accel emu --memory 512M --console none \
	--kernel "$KERNEL" --initrd "$INITRD" --append "panic=-1" >/dev/null 2>&1 </dev/null
run xvm timeout 1800 "$XVM" run --accel emu --memory 512M --console stdio \
	--kernel "$KERNEL" --initrd "$INITRD" --append "$append"
run qemu timeout 1800 qemu-system-x86_64 -accel tcg -m 512M -nographic -no-reboot \
	-kernel "$KERNEL" -initrd "$INITRD" -append "$append"

extract() { sed -n "s/.*$2=\([0-9.]*:[0-9.]*\).*/\1/p" "$1" | tr -d '\r' | head -n 1; }
secs() { awk -v s="$1" 'BEGIN { split(s, a, ":"); printf "%.2f", a[2] - a[1] }'; }
ratio() { awk -v x="$1" -v p="$2" 'BEGIN { if (x <= 0 || p <= 0) print "n/a"; else printf "%.2f", x / p }'; }

status=0
xb=$(cat "$work/xvm.boot"); qb=$(cat "$work/qemu.boot")
echo "bench: emu-boot-to-init xvm=${xb}s peer=${qb}s ratio=$(ratio "$xb" "$qb")"
for m in SHA GZIP; do
	xs=$(extract "$work/xvm.log" $m); qs=$(extract "$work/qemu.log" $m)
	if [ -z "$xs" ] || [ -z "$qs" ]; then
		echo "emu bench: $m missing (xvm: '${xs}', qemu: '${qs}')"
		tail -n 5 "$work/xvm.log" "$work/qemu.log"
		status=1
		continue
	fi
	xt=$(secs "$xs"); qt=$(secs "$qs")
	echo "bench: emu-$(echo $m | tr A-Z a-z)-${MB}M xvm=${xt}s peer=${qt}s ratio=$(ratio "$xt" "$qt")"
done
xsum=$(sed -n 's/.*SUM=\([0-9a-f]*\).*/\1/p' "$work/xvm.log" | head -n 1)
qsum=$(sed -n 's/.*SUM=\([0-9a-f]*\).*/\1/p' "$work/qemu.log" | head -n 1)
if [ -n "$xsum" ] && [ "$xsum" != "$qsum" ]; then
	echo "emu bench: checksums differ (xvm $xsum, qemu $qsum)"
	status=1
fi
exit $status
