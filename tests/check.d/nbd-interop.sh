#!/usr/bin/env bash
# xvm nbd against libnbd's tools and qemu-img: nbdinfo sees the size and
# the allocation map, nbdcopy and qemu-img copy images out and in (copies
# compare equal), read-only exports refuse writes, several clients at once,
# and a qcow2 export when the qcow2 driver is there.
set -u
: "${XVM:?}"
for t in nbdinfo nbdcopy qemu-img; do
	command -v $t >/dev/null || { echo "$t not installed (make deps: deps/bench.list)"; exit 77; }
done
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; sleep 0.2; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

# serve NAME IMAGE [OPTIONS...]: starts xvm nbd on $tmp/NAME.sock, sets URI.
serve() {
	local name=$1 img=$2; shift 2
	timeout 300 "$XVM" nbd --fork --pid-file "$tmp/$name.pid" -k "$tmp/$name.sock" "$@" "$img" ||
		fail "xvm nbd did not start for $img"
	pids+=("$(cat "$tmp/$name.pid")")
	URI="nbd+unix:///?socket=$tmp/$name.sock"
}
# stop NAME: SIGTERM and wait until the server is gone (it flushes first).
stop() {
	local pid; pid=$(cat "$tmp/$1.pid")
	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	fail "server $1 did not exit after SIGTERM"
}

# 48 MiB: 8 MiB data at 8 MiB, 4 MiB data at 32 MiB, holes elsewhere.
img=$tmp/disk.raw
truncate -s 48M "$img"
head -c 8M /dev/urandom | dd of="$img" bs=1M seek=8 conv=notrunc status=none
head -c 4M /dev/urandom | dd of="$img" bs=1M seek=32 conv=notrunc status=none

serve ro "$img" --read-only --persistent --export-name disk --description "test disk"
URI="nbd+unix:///disk?socket=$tmp/ro.sock"
info=$(nbdinfo "$URI") || fail "nbdinfo failed"
echo "$info" | grep -q "export-size: 50331648" || fail "nbdinfo size: $info"
echo "$info" | grep -q "is_read_only: true" || fail "export not read-only: $info"
echo "$info" | grep -q "base:allocation" || fail "no base:allocation context: $info"
echo "$info" | grep -q "description: test disk" || fail "no description: $info"
ok "nbdinfo: size, read-only, base:allocation"
nbdinfo --list "nbd+unix://?socket=$tmp/ro.sock" | grep -q 'export="disk"' || fail "NBD_OPT_LIST does not list 'disk'"
ok "nbdinfo --list"
map=$(nbdinfo --map "$URI") || fail "nbdinfo --map failed"
expected="0 8388608 3 hole,zero
8388608 8388608 0 data
16777216 16777216 3 hole,zero
33554432 4194304 0 data
37748736 12582912 3 hole,zero"
[ "$(echo "$map" | awk '{print $1, $2, $3, $4}')" = "$expected" ] || fail "allocation map: $map"
ok "nbdinfo --map matches the holes"

nbdcopy "$URI" "$tmp/out1.raw" || fail "nbdcopy out failed"
cmp "$img" "$tmp/out1.raw" || fail "nbdcopy copy differs"
ok "nbdcopy copies out"
qemu-img convert -f raw -O qcow2 "$URI" "$tmp/out2.qcow2" || fail "qemu-img convert from nbd failed"
qemu-img compare -f raw -F qcow2 "$img" "$tmp/out2.qcow2" >/dev/null || fail "qemu-img copy differs"
ok "qemu-img convert copies out"

# Several clients at once: four copies and an nbdinfo in parallel.
cp_pids=()
for i in 1 2 3 4; do nbdcopy "$URI" "$tmp/par$i.raw" & cp_pids+=($!); done
nbdinfo "$URI" >/dev/null || fail "nbdinfo while copying"
for p in "${cp_pids[@]}"; do wait "$p" || fail "a parallel nbdcopy failed"; done
for i in 1 2 3 4; do cmp -s "$img" "$tmp/par$i.raw" || fail "parallel copy $i differs"; done
ok "4 concurrent clients"

# Read-only: writes are refused and the image does not change.
sum=$(sha256sum <"$img")
if nbdcopy "$tmp/out1.raw" "$URI" 2>/dev/null; then fail "nbdcopy wrote to a read-only export"; fi
[ "$sum" = "$(sha256sum <"$img")" ] || fail "read-only image changed"
ok "read-only export refuses writes"
stop ro

# Copy in: nbdcopy, then qemu-img convert -n, into writable exports.
dst=$tmp/dst.raw
truncate -s 48M "$dst"
serve rw "$dst" --persistent
nbdcopy "$img" "$URI" || fail "nbdcopy in failed"
stop rw
cmp "$img" "$dst" || fail "nbdcopy copy-in differs"
ok "nbdcopy copies in (flushed on SIGTERM)"
rm -f "$dst"; truncate -s 48M "$dst"
serve rw2 "$dst"
qemu-img convert -n -f raw -O raw "$img" "$URI" || fail "qemu-img convert into nbd failed"
# Not persistent: the server exits by itself after its last client.
pid=${pids[-1]}
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "server without --persistent still running after its client left"
cmp "$img" "$dst" || fail "qemu-img copy-in differs"
ok "qemu-img convert copies in; server exits after the last client"

# A TCP export on a free port of 127.0.0.1.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
timeout 300 "$XVM" nbd --fork --pid-file "$tmp/tcp.pid" -p "$port" -t -r "$img" || fail "TCP server did not start"
pids+=("$(cat "$tmp/tcp.pid")")
nbdcopy "nbd://127.0.0.1:$port" "$tmp/tcp.raw" || fail "nbdcopy over TCP failed"
cmp -s "$img" "$tmp/tcp.raw" || fail "TCP copy differs"
kill -TERM "$(cat "$tmp/tcp.pid")"
ok "TCP on 127.0.0.1:$port"

# qcow2 export, once the block library reads qcow2.
qemu-img convert -f raw -O qcow2 "$img" "$tmp/disk.qcow2"
if "$XVM" img info "$tmp/disk.qcow2" >/dev/null 2>&1; then
	serve q "$tmp/disk.qcow2" -t
	nbdcopy "$URI" "$tmp/q.raw" || fail "nbdcopy from a qcow2 export failed"
	cmp "$img" "$tmp/q.raw" || fail "qcow2 export reads differ"
	[ "$(nbdinfo --map "$URI" | grep -c data)" -ge 2 ] || fail "qcow2 map has no data extents"
	stop q
	ok "qcow2 export"
	# Writes into a qcow2 export (nbdcopy uses several connections at once):
	# after SIGTERM the image is clean for qemu-img and holds the data.
	"$XVM" img create -q -f qcow2 "$tmp/w.qcow2" 48M || fail "create qcow2"
	serve w "$tmp/w.qcow2" -t
	nbdcopy "$img" "$URI" || fail "nbdcopy into a qcow2 export failed"
	stop w
	qemu-img check "$tmp/w.qcow2" >/dev/null || fail "qcow2 written over NBD fails qemu-img check"
	qemu-img compare -f raw -F qcow2 "$img" "$tmp/w.qcow2" >/dev/null || fail "qcow2 written over NBD differs"
	ok "qcow2 export written by nbdcopy: qemu-img check clean, identical"
else
	echo "note: qcow2 export not tested (the qcow2 driver is not available yet)"
fi
echo "all nbd interop checks passed"
