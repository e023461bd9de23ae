#!/usr/bin/env bash
# Crash safety of the qcow2 writer: blktool crash-writer does seeded
# writes, write-zeroes and discards (with a flush every 8 ops) on images
# that share clusters with a snapshot, and is killed with SIGKILL at a
# random moment. Each image must pass `qemu-img check` (leaks allowed,
# corruption not) and our own check, and every write acknowledged by a
# flush must read back.
set -u
BUILD=${BUILD:-build}
B="$BUILD/tools/blktool"
KILLS=${KILLS:-30}
command -v qemu-img >/dev/null || { echo "qemu-img not installed (deps/bench.list)"; exit 77; }
[ -x "$B" ] || make -s BUILD="$BUILD" "$B" >/dev/null || exit 1
T=$(mktemp -d /tmp/xvm-crash-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 failn=0 leaky=0
for cs in 4096 65536; do
	"$B" create qcow2 "$T/base-$cs.qcow2" 16M cluster_size=$cs || exit 1
	"$B" crash-init "$T/base-$cs.qcow2" || exit 1
	"$B" snapshot "$T/base-$cs.qcow2" -c base || exit 1
done
start=$(date +%s)
for i in $(seq 1 "$KILLS"); do
	cs=$(( i % 2 ? 4096 : 65536 ))
	img="$T/img.qcow2"
	cp "$T/base-$cs.qcow2" "$img"
	"$B" crash-writer "$img" "$i" >"$T/log" 2>"$T/err" &
	pid=$!
	sleep "0.$(( (RANDOM % 5) + 1 ))$(( RANDOM % 10 ))"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	if grep -q . "$T/err"; then echo "writer $i failed: $(cat "$T/err")"; failn=$((failn + 1)); continue; fi
	flushed=$(grep -o '[0-9]*' "$T/log" | tail -n 1)
	flushed=${flushed:-0}
	qemu-img check "$img" >"$T/check" 2>&1
	rc=$?
	ok=1
	case $rc in
	0) ;;
	3) leaky=$((leaky + 1)) ;;
	*) ok=0; echo "kill $i (cs=$cs, flushed $flushed): qemu-img check exit $rc"; head -n 20 "$T/check" ;;
	esac
	"$B" check "$img" >"$T/ours" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then ok=0; echo "kill $i: our check exit $rc"; cat "$T/ours"; fi
	if ! "$B" crash-verify "$img" "$i" "$flushed" 2>"$T/verify"; then
		ok=0; echo "kill $i (cs=$cs): flushed data lost after op $flushed"; cat "$T/verify"
	fi
	# The survivor must accept more writes and stay consistent.
	if ! "$B" write "$img" 1M 200000 99 >/dev/null; then ok=0; echo "kill $i: cannot write after the crash"; fi
	qemu-img check "$img" >"$T/check" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then ok=0; echo "kill $i: corrupt after writing on"; head -n 20 "$T/check"; fi
	if [ $ok = 1 ]; then pass=$((pass + 1)); else failn=$((failn + 1)); fi
done
echo "$KILLS kills in $(( $(date +%s) - start ))s, $leaky images with leaked clusters"
echo "$pass passed, $failn failed"
[ "$failn" -eq 0 ]
