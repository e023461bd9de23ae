#!/usr/bin/env bash
# `xvm ok` reports this host correctly: without /dev/kvm it says so (with
# the reason) and picks the software CPU; with KVM it prints both loop rates
# and a verdict. The exit status says whether any engine can run guests.
set -u
: "${XVM:?}"
out=$(timeout 60 "$XVM" ok 2>&1)
rc=$?
echo "$out"
echo "exit status $rc"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -lt 124 ] || fail "xvm ok crashed or hung (status $rc)"

if [ ! -e /dev/kvm ]; then
	grep -q "KVM: not usable: /dev/kvm: No such file or directory" <<<"$out" ||
		fail "does not say that /dev/kvm is missing"
else
	grep -q "API version" <<<"$out" || fail "no API version"
	if grep -q "CPL0 loop" <<<"$out"; then
		grep -qE "CPL0 loop: [0-9.e+]+ instructions/s" <<<"$out" || fail "no CPL0 rate"
		grep -qE "CPL3 loop: [0-9.e+]+ instructions/s" <<<"$out" || fail "no CPL3 rate"
		grep -qE "guest supervisor code (runs natively|is emulated)" <<<"$out" || fail "no verdict"
	fi
fi

if grep -q "software CPU: available" <<<"$out"; then
	[ $rc -eq 0 ] || fail "an engine is available but the exit status is $rc"
	if [ ! -e /dev/kvm ]; then
		grep -q -- "--accel auto: emu" <<<"$out" || fail "auto does not pick the software CPU"
	fi
else
	grep -q "software CPU: not available: " <<<"$out" || fail "does not report the software CPU"
	if [ ! -e /dev/kvm ]; then
		[ $rc -ne 0 ] || fail "no engine, yet exit status 0"
	fi
fi
"$XVM" ok --help | grep -q "usage: xvm ok" || fail "no --help"
"$XVM" ok --bogus 2>/dev/null && fail "accepted a bogus argument"
echo "xvm ok reports correctly"
