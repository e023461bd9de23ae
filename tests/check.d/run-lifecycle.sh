#!/usr/bin/env bash
# VM lifecycle end to end, on every engine usable here, with tiny Multiboot
# kernels built on the fly: COM1 output and the debug-exit status, SIGTERM
# and SIGINT stop a spinning guest (128+N), a triple fault resets the VM
# (restarts it, or exits 0 with --no-reboot), several vCPUs.
set -u
: "${XVM:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok_out=$("$XVM" ok 2>&1)
engines=()
grep -q "software CPU: available" <<<"$ok_out" && engines+=(emu)
grep -q "guest supervisor code runs natively" <<<"$ok_out" && engines+=(kvm)
if [ ${#engines[@]} -eq 0 ]; then
	echo "no engine can run guests here yet (software CPU not available, no native KVM)"
	exit 77
fi

le32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))"; }
# mkkernel FILE CODE-BYTES...: a Multiboot v1 a.out-kludge image loaded at
# 1 MiB, entered (32-bit protected mode) at the code after the header.
mkkernel() {
	local f=$1; shift
	{
		le32 0x1BADB002; le32 0x00010000; le32 0xE4514FFE
		le32 0x100000; le32 0x100000; le32 0x100100; le32 0x100100; le32 0x100020
		printf "$*"
	} >"$f"
	truncate -s 256 "$f"
}
# mov dx,0x3f8; mov al,'o'; out dx,al; mov al,'k'; out dx,al; mov al,10; out dx,al;
# mov al,42; out 0xf4,al; 1: hlt; jmp 1b
mkkernel "$tmp/exit42" '\x66\xba\xf8\x03\xb0\x6f\xee\xb0\x6b\xee\xb0\x0a\xee\xb0\x2a\xe6\xf4\xf4\xeb\xfd'
# 1: jmp 1b
mkkernel "$tmp/spin" '\xeb\xfe'
# lidt [0x100040] (a zero-limit IDT); ud2 -> #UD -> #GP -> #DF -> triple fault
mkkernel "$tmp/triple" '\x0f\x01\x1d\x40\x00\x10\x00\x0f\x0b'

fails=0
fail() { echo "FAIL [$accel]: $*"; fails=$((fails + 1)); }

for accel in "${engines[@]}"; do
	run=("$XVM" run --accel "$accel" --memory 16M --console stdio)

	out=$(timeout 60 "${run[@]}" --debug-exit --kernel "$tmp/exit42" 2>"$tmp/err" </dev/null)
	rc=$?
	[ $rc -eq 85 ] || fail "debug-exit 42: exit status $rc, want 85 ($(head -c 300 "$tmp/err"))"
	[ "$out" = "ok" ] || fail "COM1 output '$out', want 'ok'"

	timeout 60 "${run[@]}" --cpus 4 --debug-exit --kernel "$tmp/exit42" >/dev/null 2>"$tmp/err" </dev/null
	rc=$?
	[ $rc -eq 85 ] || fail "4 vCPUs: exit status $rc, want 85 ($(head -c 300 "$tmp/err"))"

	for sig in TERM INT; do
		"${run[@]}" --kernel "$tmp/spin" >/dev/null 2>"$tmp/err" </dev/null &
		pid=$!
		sleep 1
		kill -$sig $pid
		for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
		if kill -0 $pid 2>/dev/null; then
			fail "SIG$sig did not stop the VM within 10 s"
			kill -KILL $pid
		fi
		wait $pid
		rc=$?
		want=$((128 + $(kill -l $sig)))
		[ $rc -eq $want ] || fail "SIG$sig: exit status $rc, want $want ($(head -c 300 "$tmp/err"))"
	done

	timeout 60 "${run[@]}" --no-reboot --kernel "$tmp/triple" >/dev/null 2>"$tmp/err" </dev/null
	rc=$?
	[ $rc -eq 0 ] || fail "triple fault with --no-reboot: exit status $rc, want 0 ($(head -c 300 "$tmp/err"))"

	# Without --no-reboot the VM restarts (again and again): stop it after 3 s.
	"${run[@]}" -v --kernel "$tmp/triple" >/dev/null 2>"$tmp/err" </dev/null &
	pid=$!
	sleep 3
	kill -TERM $pid
	for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
	if kill -0 $pid 2>/dev/null; then
		fail "SIGTERM did not stop the rebooting VM within 10 s"
		kill -KILL $pid
	fi
	wait $pid
	rc=$?
	[ $rc -eq 143 ] || fail "rebooting guest: exit status $rc after SIGTERM, want 143"
	n=$(grep -c "guest reset; restarting" "$tmp/err")
	[ "$n" -ge 2 ] || fail "triple fault: $n restarts in 3 s, want at least 2"
	echo "[$accel] done ($n restarts of the triple-faulting guest in 3 s)"
done

[ $fails -eq 0 ] || { echo "$fails failures"; exit 1; }
echo "lifecycle checks passed on: ${engines[*]}"
