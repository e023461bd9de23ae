#!/usr/bin/env bash
# `xvm run` refuses bad input with one line naming the problem and a
# non-zero status, never a crash (status >= 128) or a hang.
set -u
: "${XVM:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'not a kernel at all\n' >"$tmp/junk"
: >"$tmp/empty"
fails=0

# expect NEEDLE ARGS...: non-zero exit below 128, one stderr line containing NEEDLE.
expect() {
	local needle=$1; shift
	local rc
	timeout 20 "$XVM" run "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	local lines
	lines=$(grep -c . "$tmp/err")
	if [ $rc -eq 0 ] || [ $rc -ge 124 ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$needle" "$tmp/err"; then
		echo "FAIL: xvm run $* -> exit $rc, stderr:"
		sed 's/^/    /' "$tmp/err"
		fails=$((fails + 1))
	else
		echo "ok: xvm run $* -> exit $rc: $(cat "$tmp/err")"
	fi
}

expect "no kernel"
expect "unknown option '--frobnicate'" --kernel "$tmp/junk" --frobnicate
expect "needs a value" --kernel
expect "No such file or directory" --kernel "$tmp/missing"
expect "empty file" --kernel "$tmp/empty"
expect "not a regular file" --kernel "$tmp"
expect "--initrd" --kernel "$tmp/junk" --initrd "$tmp/missing-initrd"
expect "--memory lots" --kernel "$tmp/junk" --memory lots
expect "--memory 512K" --kernel "$tmp/junk" --memory 512K
expect "this host has only" --kernel "$tmp/junk" --memory 1T
expect "--cpus 0" --kernel "$tmp/junk" --cpus 0
expect "--cpus 1000" --kernel "$tmp/junk" --cpus 1000
expect "--accel xen" --kernel "$tmp/junk" --accel xen
expect "--console tty" --kernel "$tmp/junk" --console tty
expect "format must be raw or qcow2" --kernel "$tmp/junk" --disk path=x,format=vdi
expect "unexpected argument" --kernel "$tmp/junk" extra-arg
# With --name, every line of the VM says which VM it is.
expect "xvm[web-1]: " --name web-1 --kernel "$tmp/missing"
# No /dev/kvm here: asking for KVM says exactly why.
if [ ! -e /dev/kvm ]; then
	expect "/dev/kvm: No such file or directory" --kernel "$tmp/junk" --accel kvm
fi

# --help is complete: every option is documented.
"$XVM" run --help >"$tmp/help" || { echo "FAIL: --help exit status"; fails=$((fails + 1)); }
for opt in --accel --cpus --memory --kernel --initrd --append --console --debug-exit \
	   --no-reboot --name --disk --net --rng --verbose --help; do
	grep -q -- "$opt" "$tmp/help" || { echo "FAIL: --help does not mention $opt"; fails=$((fails + 1)); }
done

[ $fails -eq 0 ] || { echo "$fails failures"; exit 1; }
echo "all bad inputs refused cleanly"
