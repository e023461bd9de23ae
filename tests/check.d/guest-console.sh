#!/usr/bin/env bash
# The console end to end: piped stdin reaches the guest's COM1 complete
# (also bytes sent before the guest set the UART up) and EOF only ends
# input; on a terminal (a pty from script(1)) input is raw, Ctrl-a x quits
# with status 0, and the terminal settings are restored after Ctrl-a x and
# after SIGTERM.
set -u
source "$(dirname "$0")/guest-common.inc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kernel="$GUEST_DIR/hello.elf"

fails=0 runs=0
pass() { runs=$((runs + 1)); echo "ok   $*"; }
failed() {
	runs=$((runs + 1)); fails=$((fails + 1)); echo "FAIL $*"
	[ -f "$tmp/out" ] && sed 's/^/       out| /' "$tmp/out" | tail -n 8
}

for accel in "${ENGINES[@]}"; do
	run=("$XVM" run --accel "$accel" --memory 64M --debug-exit --no-reboot --kernel "$kernel")

	# Pipe: every byte arrives, Ctrl-a is data here; 'q' ends the echo.
	printf 'AB\001Cq' | timeout 60 "${run[@]}" --append "echo=1" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	guest_require_loader "$tmp/err"
	got=$(grep '^got: ' "$tmp/out" | tr '\n' '|')
	if [ $rc -eq 33 ] && [ "$got" = "got: A (41)|got: B (42)|got: . (1)|got: C (43)|" ]; then
		pass "[$accel] piped input reaches COM1 intact"
	else
		failed "[$accel] piped input: exit $rc, echoed '$got'"
	fi

	# EOF on stdin does not stop the VM: it runs until the guest exits.
	timeout 60 "${run[@]}" --append "lines=3" </dev/null >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -eq 33 ] && grep -q "^PASS" "$tmp/out"; then
		pass "[$accel] stdin at EOF: the guest runs to its end"
	else
		failed "[$accel] stdin at EOF: exit $rc"
	fi

	if ! command -v script >/dev/null; then
		echo "skip [$accel] terminal checks: script(1) not installed"
		continue
	fi
	# Terminal: raw input, Ctrl-a x quits with 0, settings restored.
	cat >"$tmp/tty.sh" <<EOS
stty -g >"$tmp/before"
$(printf '%q ' "${run[@]}") --append echo=1 >"$tmp/out" 2>"$tmp/err"
echo \$? >"$tmp/rc"
stty -g >"$tmp/after"
EOS
	rm -f "$tmp/rc"
	(sleep 2; printf 'hi'; sleep 2; printf '\001x'; sleep 2) |
		timeout 60 script -qec "bash $tmp/tty.sh" /dev/null >/dev/null 2>&1
	got=$(grep -c '^got: [hi]' "$tmp/out" 2>/dev/null)
	if [ "$(cat "$tmp/rc" 2>/dev/null)" = 0 ] && [ "$got" = 2 ] &&
	   cmp -s "$tmp/before" "$tmp/after"; then
		pass "[$accel] terminal: keys reach the guest, Ctrl-a x exits 0, tty restored"
	else
		failed "[$accel] terminal: exit '$(cat "$tmp/rc" 2>/dev/null)', $got keys echoed," \
			"tty $(cmp -s "$tmp/before" "$tmp/after" && echo restored || echo NOT restored)"
	fi

	# SIGTERM while the terminal is raw: still restored.
	cat >"$tmp/tty.sh" <<EOS
stty -g >"$tmp/before"
sh -c 'echo \$\$ >"$tmp/pid"; exec $(printf '%q ' "${run[@]}") --append echo=1' >"$tmp/out" 2>"$tmp/err"
echo \$? >"$tmp/rc"
stty -g >"$tmp/after"
EOS
	rm -f "$tmp/rc" "$tmp/pid"
	(sleep 8) | timeout 60 script -qec "bash $tmp/tty.sh" /dev/null >/dev/null 2>&1 &
	script_pid=$!
	for _ in $(seq 50); do [ -s "$tmp/pid" ] && break; sleep 0.1; done
	sleep 2
	[ -s "$tmp/pid" ] && kill -TERM "$(cat "$tmp/pid")"
	wait "$script_pid"
	if [ "$(cat "$tmp/rc" 2>/dev/null)" = 143 ] && cmp -s "$tmp/before" "$tmp/after"; then
		pass "[$accel] terminal: SIGTERM exits 143 and restores the tty"
	else
		failed "[$accel] terminal after SIGTERM: exit '$(cat "$tmp/rc" 2>/dev/null)'," \
			"tty $(cmp -s "$tmp/before" "$tmp/after" && echo restored || echo NOT restored)"
	fi
done

echo "$runs checks on: ${ENGINES[*]}, $fails failed"
[ $fails -eq 0 ]
