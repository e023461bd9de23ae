#!/usr/bin/env bash
# xvm img on qcow2, both directions against qemu-img: images xvm writes
# pass `qemu-img check` and read back identical through qemu-img; images
# qemu-img writes (compressed zlib/zstd, snapshots, backing chains, 64 KiB
# and 2 MiB clusters, compat 0.10) read identical through xvm; info JSON,
# map, rebase (safe and -u), commit, resize, snapshots and check.
set -u
: "${XVM:?}"
for t in qemu-img qemu-io python3; do
	command -v $t >/dev/null || { echo "$t not installed (make deps: deps/bench.list)"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
img() { timeout 120 "$XVM" img "$@"; }
if ! "$XVM" img create -q -f qcow2 probe.qcow2 1M 2>probe.err; then
	echo "qcow2 not supported by this build's block library yet: $(cat probe.err)"; exit 77
fi
qcheck() { qemu-img check "$1" >chk.txt 2>&1 || { cat chk.txt; fail "qemu-img check $1"; }; }
# same_content A B: both read the same through qemu-img (raw dumps compared).
same_content() {
	qemu-img convert -O raw "$1" A.dump && qemu-img convert -O raw "$2" B.dump || fail "dumping $1 / $2"
	cmp -s A.dump B.dump || fail "$1 and $2 differ"
}
# xvm_reads_like_qemu IMG: xvm's raw export equals qemu-img's.
xvm_reads_like_qemu() {
	img convert -O raw "$1" x.dump || fail "xvm img convert $1"
	qemu-img convert -O raw "$1" q.dump || fail "qemu-img convert $1"
	cmp -s x.dump q.dump || fail "xvm reads $1 differently from qemu-img"
}

# Source data: 24 MiB, text (compressible) and random parts, holes, zeros.
truncate -s 24M src.raw
head -c 3M /dev/urandom | dd of=src.raw bs=1M seek=1 conv=notrunc status=none
yes "xvm qcow2 interop line" | head -c 4M | dd of=src.raw bs=1M seek=8 conv=notrunc status=none
head -c 1M /dev/zero | dd of=src.raw bs=1M seek=14 conv=notrunc status=none
head -c 7777 /dev/urandom | dd of=src.raw bs=1 seek=$((23 * 1048576 + 4321)) conv=notrunc status=none

# 1: images xvm writes.
for cs in 512 4K 64K 2M; do
	img create -q -f qcow2 -o cluster_size=$cs e$cs.qcow2 24M || fail "create cluster_size=$cs"
	qcheck e$cs.qcow2
	img convert -O qcow2 -o cluster_size=$cs src.raw c$cs.qcow2 || fail "convert cluster_size=$cs"
	qcheck c$cs.qcow2
	qemu-img compare -f raw -F qcow2 src.raw c$cs.qcow2 >/dev/null || fail "qemu-img reads c$cs.qcow2 differently"
done
ok "xvm-written qcow2 (512 B to 2 MiB clusters) passes qemu-img check, reads identical"
img convert -c -O qcow2 src.raw comp.qcow2 || fail "convert -c"
qcheck comp.qcow2
qemu-img compare src.raw comp.qcow2 >/dev/null || fail "compressed image reads differently"
[ "$(qemu-img check --output=json comp.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("compressed-clusters", 0))')" -gt 0 ] || fail "no compressed clusters"
ok "convert -c: compressed clusters, qemu-img check clean, identical"
img convert -c -O qcow2 -o compression_type=zstd src.raw zstd.qcow2 || fail "convert -c zstd"
qcheck zstd.qcow2
qemu-img compare src.raw zstd.qcow2 >/dev/null || fail "zstd image reads differently"
ok "convert -c with zstd"
img create -q -f qcow2 -o compat=0.10 v2.qcow2 8M || fail "create compat=0.10"
qcheck v2.qcow2
qemu-img info v2.qcow2 | grep -q "compat: 0.10" || fail "compat=0.10 not honoured"
img create -q -f qcow2 -o refcount_bits=8 r8.qcow2 8M && qcheck r8.qcow2 || fail "refcount_bits=8"
ok "compat=0.10, refcount_bits=8"
img convert -O raw c64K.qcow2 back.raw && cmp src.raw back.raw || fail "qcow2->raw differs"
ok "qcow2 -> raw round trip"

# 2: images qemu-img writes.
qemu-img convert -O qcow2 -o cluster_size=64k src.raw q64.qcow2
qemu-img convert -O qcow2 -o cluster_size=2M src.raw q2m.qcow2
qemu-img convert -O qcow2 -o cluster_size=512 src.raw q512.qcow2
qemu-img convert -c -O qcow2 src.raw qz.qcow2
qemu-img convert -c -O qcow2 -o compression_type=zstd src.raw qzstd.qcow2
qemu-img convert -O qcow2 -o compat=0.10 src.raw qv2.qcow2
for f in q64 q2m q512 qz qzstd qv2; do xvm_reads_like_qemu $f.qcow2; done
ok "qemu-img images (64K, 2M, 512 clusters, zlib, zstd, v2) read identical"
# A backing chain of three with writes at each level (including zeroes).
qemu-img convert -O qcow2 src.raw base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
qemu-io -c "write -P 0x11 1M 256k" -c "write -z 9M 512k" mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
qemu-io -c "write -P 0x22 1152k 64k" -c "discard 8M 64k" -c "write -P 0x33 20M 1M" top.qcow2 >/dev/null
xvm_reads_like_qemu top.qcow2
ok "three-level backing chain reads identical"
# Snapshots made by qemu-img: listed by xvm, data of the current state.
qemu-img convert -O qcow2 src.raw snap.qcow2
qemu-img snapshot -c first snap.qcow2
qemu-io -c "write -P 0x44 0 1M" snap.qcow2 >/dev/null
qemu-img snapshot -c second snap.qcow2
xvm_reads_like_qemu snap.qcow2
img snapshot -l snap.qcow2 | grep -q first || fail "xvm does not list qemu-img's snapshot"
ok "qemu-img snapshots listed, current data identical"

# 3: info JSON with qemu-img's keys and values.
img info --output=json top.qcow2 >x.json || fail "info json"
qemu-img info --output=json top.qcow2 >q.json
python3 - <<'PY' || fail "info JSON differs from qemu-img's"
import json
x, q = json.load(open("x.json")), json.load(open("q.json"))
for k in ["virtual-size", "filename", "format", "cluster-size", "backing-filename",
          "full-backing-filename", "backing-filename-format", "dirty-flag"]:
    assert x.get(k) == q.get(k), (k, x.get(k), q.get(k))
for k in ["compat", "refcount-bits", "corrupt", "compression-type"]:
    assert x["format-specific"]["data"][k] == q["format-specific"]["data"][k], k
PY
img info --output=json snap.qcow2 | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [s["name"] for s in d["snapshots"]] == ["first", "second"], d' || fail "snapshots in info JSON"
img info --backing-chain --output=json top.qcow2 | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [i["filename"] for i in d] == ["top.qcow2", "mid.qcow2", "base.qcow2"], d' || fail "--backing-chain"
ok "info JSON keys match qemu-img's; snapshots; --backing-chain"

# 4: map JSON (offsets aside) matches qemu-img's.
strip='import json,sys; print(json.dumps([{k: e[k] for k in ("start","length","depth","present","zero","data")} for e in json.load(sys.stdin)]))'
for f in c64K.qcow2 top.qcow2 q2m.qcow2; do
	a=$(img map --output=json $f | python3 -c "$strip") || fail "map $f"
	b=$(qemu-img map --output=json $f | python3 -c "$strip")
	[ "$a" = "$b" ] || { echo "xvm:  $a"; echo "qemu: $b"; fail "map of $f differs"; }
done
img map c64K.qcow2 >x.hmap; qemu-img map c64K.qcow2 >q.hmap
cmp -s x.hmap q.hmap || { diff x.hmap q.hmap; fail "human map differs"; }
ok "map matches qemu-img's"

# 5: rebase, safe: the image reads the same over a different backing file.
qemu-img convert -O raw top.qcow2 before.raw
head -c 24M /dev/urandom >other.raw
img rebase -b other.raw -F raw top.qcow2 || fail "rebase"
qcheck top.qcow2
qemu-img info top.qcow2 | grep -q "backing file: other.raw" || fail "backing file not changed"
qemu-img convert -O raw top.qcow2 after.raw; cmp -s before.raw after.raw || fail "rebase changed the content"
img rebase -b "" top.qcow2 || fail "rebase -b ''"
qemu-img info --output=json top.qcow2 | grep -q backing-filename && fail "backing not removed"
qemu-img convert -O raw top.qcow2 after.raw; cmp -s before.raw after.raw || fail "rebase -b '' changed the content"
ok "rebase (to another backing file, and to none) keeps the content"
cp src.raw copy.raw
qemu-img create -q -f qcow2 -b src.raw -F raw ov.qcow2
img rebase -u -b copy.raw -F raw ov.qcow2 || fail "rebase -u"
qemu-img info ov.qcow2 | grep -q "backing file: copy.raw" || fail "rebase -u did not change the reference"
qcheck ov.qcow2
ok "rebase -u"

# 6: commit: the top's data lands in the backing file; the top empties.
qemu-img convert -O qcow2 src.raw cbase.qcow2
qemu-img create -q -f qcow2 -b cbase.qcow2 -F qcow2 ctop.qcow2
qemu-io -c "write -P 0x55 2M 1M" -c "write -z 8M 64k" ctop.qcow2 >/dev/null
qemu-img convert -O raw ctop.qcow2 want.raw
img commit ctop.qcow2 >/dev/null || fail "commit"
qcheck cbase.qcow2; qcheck ctop.qcow2
qemu-img convert -O raw cbase.qcow2 got.raw; cmp -s want.raw got.raw || fail "backing file after commit differs"
qemu-img convert -O raw ctop.qcow2 got.raw; cmp -s want.raw got.raw || fail "top after commit differs"
qemu-img map --output=json ctop.qcow2 | grep -q '"depth": 0, "present": true' && fail "top not emptied"
ok "commit"

# 7: resize and snapshots on xvm-made images.
img resize c64K.qcow2 +8M >/dev/null || fail "resize qcow2"
[ "$(qemu-img info --output=json c64K.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" = $((32 * 1048576)) ] || fail "resized size"
qcheck c64K.qcow2
ok "resize qcow2"
img convert -O qcow2 src.raw s.qcow2
img snapshot -c keep s.qcow2 || fail "snapshot -c"
qemu-io -c "write -P 0x66 1M 2M" s.qcow2 >/dev/null
img snapshot -l s.qcow2 | grep -q keep || fail "snapshot -l"
qemu-img snapshot -l s.qcow2 | grep -q keep || fail "qemu-img does not see xvm's snapshot"
qcheck s.qcow2
img snapshot -a keep s.qcow2 || fail "snapshot -a"
qemu-img compare src.raw s.qcow2 >/dev/null || fail "snapshot -a did not restore the data"
img snapshot -d keep s.qcow2 || fail "snapshot -d"
qemu-img snapshot -l s.qcow2 | grep -q keep && fail "snapshot not deleted"
qcheck s.qcow2
ok "snapshot -c, -l, -a, -d (checked by qemu-img)"

# 8: check: clean exit 0, JSON parses.
img check c2M.qcow2 >/dev/null || fail "check on a clean image"
img check --output=json c2M.qcow2 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["check-errors"] == 0' || fail "check JSON"
img compare c64K.qcow2 src.raw >/dev/null || fail "compare qcow2 with raw"
ok "check, compare across formats"
# 9: leaks and corruptions, made by editing a refcount by hand.
cat >setref.py <<'PY'
import struct, sys
path, which = sys.argv[1], sys.argv[2]
f = open(path, "r+b")
h = f.read(104)
cluster = 1 << struct.unpack(">I", h[20:24])[0]
rt = struct.unpack(">Q", h[48:56])[0]
order = struct.unpack(">I", h[96:100])[0] if struct.unpack(">I", h[4:8])[0] >= 3 else 4
assert order == 4, "16-bit refcounts expected"
per_block = cluster * 8 // 16
if which == "leak":           # a cluster past the end, counted but unused
    f.seek(0, 2); end = f.tell()
    k = (end + cluster - 1) // cluster
    f.truncate((k + 1) * cluster); value = 1
else:                         # a used data cluster counted as free
    k = int(sys.argv[3]) // cluster; value = 0
f.seek(rt + 8 * (k // per_block))
block = struct.unpack(">Q", f.read(8))[0]
assert block, "no refcount block for cluster %d" % k
f.seek(block + 2 * (k % per_block)); f.write(struct.pack(">H", value))
PY
img convert -O qcow2 src.raw leak.qcow2
python3 setref.py leak.qcow2 leak || fail "making a leak"
qemu-img check leak.qcow2 >/dev/null 2>&1; [ $? = 3 ] || fail "qemu-img does not see the leak"
img check leak.qcow2 >x.txt; rc=$?
[ $rc = 3 ] && grep -q "1 leaked clusters" x.txt || { cat x.txt; fail "xvm check on a leak: rc=$rc"; }
img check -r leaks leak.qcow2 >x.txt || { cat x.txt; fail "check -r leaks"; }
qcheck leak.qcow2
qemu-img compare src.raw leak.qcow2 >/dev/null || fail "data changed by check -r leaks"
ok "check finds a leak (exit 3), -r leaks repairs it"
img convert -O qcow2 src.raw bad.qcow2
off=$(qemu-img map --output=json bad.qcow2 | python3 -c 'import json,sys; print([e["offset"] for e in json.load(sys.stdin) if e["data"]][0])')
python3 setref.py bad.qcow2 corrupt "$off" || fail "making a corruption"
qemu-img check bad.qcow2 >/dev/null 2>&1; [ $? = 2 ] || fail "qemu-img does not see the corruption"
img check bad.qcow2 >x.txt; rc=$?
[ $rc = 2 ] || { cat x.txt; fail "xvm check on a corruption: rc=$rc"; }
img check -r all bad.qcow2 >x.txt || { cat x.txt; fail "check -r all"; }
qcheck bad.qcow2
qemu-img compare src.raw bad.qcow2 >/dev/null || fail "data changed by check -r all"
ok "check finds a corruption (exit 2), -r all repairs it"

# 10: convert -B (only what differs from the backing file) and -n.
qemu-img convert -O qcow2 src.raw bbase.qcow2
cp src.raw changed.raw
head -c 1M /dev/urandom | dd of=changed.raw bs=1M seek=16 conv=notrunc status=none
img convert -O qcow2 -B bbase.qcow2 -F qcow2 changed.raw delta.qcow2 || fail "convert -B"
qcheck delta.qcow2
qemu-img compare changed.raw delta.qcow2 >/dev/null || fail "convert -B content"
used=$(qemu-img map --output=json delta.qcow2 | python3 -c 'import json,sys; print(sum(e["length"] for e in json.load(sys.stdin) if e["depth"] == 0 and e["data"]))')
[ "$used" -le $((2 * 1048576)) ] || fail "convert -B copied $used bytes (only 1 MiB differs)"
qemu-img create -q -f qcow2 pre.qcow2 24M
img convert -n -O qcow2 src.raw pre.qcow2 || fail "convert -n"
qemu-img compare src.raw pre.qcow2 >/dev/null || fail "convert -n content"
ok "convert -B copies only the difference; convert -n"
# 11: sizes that are not whole sectors round up, as with qemu-img (qemu
# reads a qcow2 size rounded down, so rounding down would hide data).
head -c 1000 /dev/urandom >odd.raw
img create -q -f qcow2 odd-e.qcow2 1000 || fail "create 1000 bytes"
[ "$(qemu-img info --output=json odd-e.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" = 1024 ] || fail "1000-byte qcow2 not rounded up to 1024"
img convert -O qcow2 odd.raw odd.qcow2 || fail "convert 1000 bytes"
qemu-img compare odd.raw odd.qcow2 >/dev/null || fail "1000-byte convert loses data"
yes "odd sized and compressible" | head -c 70000 >odd2.raw
for f in odd odd2; do
	img convert -c -O qcow2 $f.raw $f-c.qcow2 || fail "convert -c of $f.raw"
	qcheck $f-c.qcow2
	qemu-img compare $f.raw $f-c.qcow2 >/dev/null || fail "convert -c of $f.raw differs"
done
ok "unaligned sizes round up to whole sectors"
echo "all img qcow2 checks passed"
