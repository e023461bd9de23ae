#!/usr/bin/env bash
# xvm img on raw images, checked against qemu-img: create/info (JSON
# parses), sparse convert, map (same as qemu-img's), compare (same exit
# codes and offsets as qemu-img), resize, help, and bad input refused with
# one line and a non-zero status.
set -u
: "${XVM:?}"
command -v qemu-img >/dev/null || { echo "qemu-img not installed (make deps: deps/bench.list)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
img() { timeout 120 "$XVM" img "$@"; }

img create -q -f raw a.raw 64M || fail "create"
[ "$(stat -c %s a.raw)" = 67108864 ] || fail "created size"
img info --output=json a.raw >info.json || fail "info --output=json"
python3 - <<'PY' || fail "info JSON"
import json
d = json.load(open("info.json"))
assert d["virtual-size"] == 67108864 and d["format"] == "raw" and d["filename"] == "a.raw", d
assert "actual-size" in d
PY
img info a.raw | grep -q "virtual size: 64 MiB (67108864 bytes)" || fail "human info"
ok "create, info"

# Data with holes and an all-zero data region (written zeros must become a hole).
truncate -s 40M src.raw
head -c 3M /dev/urandom | dd of=src.raw bs=1M seek=1 conv=notrunc status=none
head -c 2M /dev/zero | dd of=src.raw bs=1M seek=10 conv=notrunc status=none
head -c 5000 /dev/urandom | dd of=src.raw bs=1 seek=$((20 * 1048576 + 123)) conv=notrunc status=none
img convert -O raw src.raw out.raw || fail "convert raw->raw"
cmp src.raw out.raw || fail "convert copy differs"
[ "$(du -k out.raw | cut -f1)" -lt 4200 ] || fail "convert output not sparse: $(du -k out.raw)"
ok "convert raw->raw is exact and sparse"
img map --output=json out.raw >x.map || fail "map"
qemu-img map --output=json out.raw >q.map
cmp x.map q.map || { diff x.map q.map; fail "map differs from qemu-img's"; }
img map out.raw >x.hmap; qemu-img map out.raw >q.hmap
cmp x.hmap q.hmap || { diff x.hmap q.hmap; fail "human map differs from qemu-img's"; }
ok "map (json and human) equals qemu-img's"
img convert -p -m 1 -S 0 -O raw src.raw full.raw >progress.txt || fail "convert -p -m 1 -S 0"
grep -q "100.00/100%" progress.txt || fail "no progress shown"
cmp src.raw full.raw || fail "-S 0 copy differs"
ok "convert -p -m 1 -S 0"
cat src.raw src.raw >twice.raw
img convert -O raw src.raw src.raw cat.raw && cmp twice.raw cat.raw || fail "convert of two inputs does not concatenate"
ok "convert concatenates inputs"

img compare src.raw out.raw >cmp.txt; rc=$?
[ $rc = 0 ] && grep -q "Images are identical." cmp.txt || fail "compare identical: rc=$rc"
printf 'Z' | dd of=out.raw bs=1 seek=$((30 * 1048576 + 777)) conv=notrunc status=none
img compare src.raw out.raw >x.txt; rc=$?
qemu-img compare src.raw out.raw >q.txt
[ $rc = 1 ] && cmp x.txt q.txt || fail "compare mismatch: rc=$rc '$(cat x.txt)' vs '$(cat q.txt)'"
truncate -s 41M big.raw; cp --sparse=always src.raw big.raw; truncate -s 41M big.raw
img compare src.raw big.raw >/dev/null || fail "compare: zero tail should be identical"
img compare -s src.raw big.raw >/dev/null; [ $? = 1 ] || fail "compare -s with different sizes"
img compare src.raw missing.raw 2>/dev/null; [ $? = 2 ] || fail "compare with a missing file should exit 2"
ok "compare exit codes and offsets as qemu-img"

img resize a.raw +1M >/dev/null && [ "$(stat -c %s a.raw)" = $((65 * 1048576)) ] || fail "resize +1M"
img resize a.raw 60M 2>err.txt && fail "shrink without --shrink"
img resize --shrink a.raw -5M >/dev/null && [ "$(stat -c %s a.raw)" = $((60 * 1048576)) ] || fail "resize --shrink -5M"
img resize a.raw 70M >/dev/null && [ "$(stat -c %s a.raw)" = $((70 * 1048576)) ] || fail "resize 70M"
ok "resize absolute, +, - and --shrink"

img check a.raw 2>/dev/null; [ $? = 63 ] || fail "check on raw should exit 63"
ok "check on raw: 63"

img --help | grep -q "xvm img convert" || fail "img --help"
for c in create info check convert resize snapshot rebase commit compare map; do
	img $c --help | grep -q "usage: xvm img $c" || fail "img $c --help"
done
ok "--help for every subcommand"

# Bad input: one stderr line, status 1..127.
bad() {
	local rc
	timeout 20 "$XVM" img "$@" >/dev/null 2>err.txt; rc=$?
	if [ $rc -eq 0 ] || [ $rc -ge 124 ] || [ "$(grep -c . err.txt)" -ne 1 ]; then
		cat err.txt; fail "xvm img $* -> exit $rc"
	fi
	echo "ok: xvm img $* -> $rc: $(cat err.txt)"
}
bad create x.raw 12Q
bad create x.raw
bad create -f qcow2 -o cluster_size=1000 x.qcow2 1M
bad create -f vmdk x.vmdk 1M
bad info nonexistent.img
bad convert -O raw nonexistent.img y.raw
bad convert -c -O raw src.raw y.raw
bad frobnicate
bad resize a.raw abc
bad map
bad create --bogus x.raw 1M
bad convert -O
bad snapshot -c
echo "all img raw checks passed"
