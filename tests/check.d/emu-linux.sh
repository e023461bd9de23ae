#!/usr/bin/env bash
# Debian's stock kernel and the busybox initramfs of the guest kit boot on
# the software CPU (--accel emu) with 1 and 2 vCPUs, run userland commands
# through the kit's xvm.cmd hook (a checksum of a generated file, gzip round
# trip, /proc/cpuinfo, a shell loop) and power off with status 0. The JIT
# is on (the default) in the 1 and 2-vCPU runs; a 1-vCPU run repeats them
# with the interpreter alone (XVM_EMU_JIT=0) and one with every block
# compiled at its first run (XVM_EMU_JIT_THRESHOLD=1).
set -u
: "${XVM:?}" "${BUILD:?}"
kit="$BUILD/guest"
if [ ! -f "$kit/vmlinuz" ] || [ ! -f "$kit/initramfs.cpio.gz" ]; then
	echo "guest kit missing ($kit: run 'make guest')"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The same generator on the host gives the expected checksum.
want=$(seq 1 100000 | sha256sum | cut -d' ' -f1)
# (no double quotes inside: the kernel command line quotes with them)
cmd='seq 1 100000 > /tmp/f; echo sum=$(sha256sum < /tmp/f); echo gz=$(gzip -c /tmp/f | gunzip -c | sha256sum); echo cpus=$(grep -c ^processor /proc/cpuinfo); i=0; while [ $i -lt 500 ]; do i=$((i+1)); done; echo loop=$i'

fails=0
for run in 1 2 1-interp 1-jit1; do
	cpus=${run%%-*}
	jit=1 threshold=${XVM_EMU_JIT_THRESHOLD:-32} what="$cpus vCPU(s)"
	case $run in
	*-interp) jit=0 what="$cpus vCPU(s), interpreter only" ;;
	*-jit1) threshold=1 what="$cpus vCPU(s), JIT at first run" ;;
	esac
	out="$tmp/out$run" err="$tmp/err$run"
	start=$(date +%s)
	XVM_EMU_JIT=$jit XVM_EMU_JIT_THRESHOLD=$threshold \
	timeout 300 "$XVM" run --accel emu --cpus "$cpus" --memory 256M --console stdio \
		--kernel "$kit/vmlinuz" --initrd "$kit/initramfs.cpio.gz" \
		--append "console=ttyS0 quiet tsc=reliable xvm.cmd=\"$cmd\"" </dev/null >"$out" 2>"$err"
	rc=$?
	took=$(( $(date +%s) - start ))
	tr -d '\r' <"$out" >"$out.txt"
	bad=""
	[ $rc -eq 0 ] || bad="$bad exit status $rc;"
	grep -q "^sum=$want" "$out.txt" || bad="$bad checksum;"
	grep -q "^gz=$want" "$out.txt" || bad="$bad gzip round trip;"
	grep -q "^cpus=$cpus\$" "$out.txt" || bad="$bad cpu count;"
	grep -q "^loop=500\$" "$out.txt" || bad="$bad shell loop;"
	grep -q "xvm-guest: exit status 0" "$out.txt" || bad="$bad command status;"
	if [ -n "$bad" ]; then
		echo "FAIL: $what:$bad"
		tail -n 25 "$out.txt"
		tail -n 10 "$err"
		fails=$((fails + 1))
	else
		echo "ok: $what booted, ran the commands and powered off in ${took}s"
	fi
done
[ $fails -eq 0 ]
