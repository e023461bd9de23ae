#!/usr/bin/env bash
# Interoperability of the block library with qemu-img, driven through
# build/tools/blktool: images qemu-img writes (cluster sizes 512 B..2 MiB,
# v2, other refcount widths, compressed zlib/zstd, snapshots, backing
# chains) must read back identical to `qemu-img convert -O raw`, and images
# we write must pass `qemu-img check` and compare equal through qemu-img.
set -u
BUILD=${BUILD:-build}
B="$BUILD/tools/blktool"
command -v qemu-img >/dev/null || { echo "qemu-img not installed (deps/bench.list)"; exit 77; }
[ -x "$B" ] || make -s BUILD="$BUILD" "$B" >/dev/null || exit 1
T=$(mktemp -d /tmp/xvm-interop-XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
pass=0 failn=0
t() { # NAME CMD...: one test
	local what=$1; shift
	if "$@" >"$T/out" 2>&1; then pass=$((pass + 1)); else
		failn=$((failn + 1)); echo "FAIL: $what"; sed 's/^/    /' "$T/out" | tail -5; fi
}
reads_same() { # IMG: our read of IMG equals qemu-img's
	qemu-img convert -O raw "$1" q.raw && "$B" read-all "$1" o.raw && cmp q.raw o.raw
}
written_ok() { # IMG REF: qemu-img check clean and content equal to REF
	qemu-img check -q "$1" && qemu-img compare -q "$2" "$1"
}
qemu_conv() { qemu-img convert "$@"; }
ours_conv() { "$B" convert "$@"; }

# Source data: patterns, holes, random bytes, a run of zeros.
qemu-img create -q -f raw src.raw 20M
qemu-io -f raw -c "write -P 0xab 100k 3M" -c "write -P 0x11 10M 100k" \
	-c "write -P 0x5c 19M 1M" src.raw >/dev/null
head -c 777777 /dev/urandom >rnd && dd if=rnd of=src.raw bs=1 seek=13631489 conv=notrunc status=none

for cs in 512 4096 65536 2097152; do
	t "qemu writes cs=$cs" qemu_conv -O qcow2 -o cluster_size=$cs src.raw a.qcow2
	qemu-io -c 'write -z 15M 1M' -c 'write -P 7 1000 3000' a.qcow2 >/dev/null
	t "we read qemu cs=$cs" reads_same a.qcow2
	t "qemu zlib cs=$cs" qemu_conv -c -O qcow2 -o cluster_size=$cs src.raw c.qcow2
	t "we read qemu zlib cs=$cs" reads_same c.qcow2
	t "we write cs=$cs" ours_conv src.raw w.qcow2 qcow2 cluster_size=$cs
	t "qemu reads ours cs=$cs" written_ok w.qcow2 src.raw
	t "we write zlib cs=$cs" ours_conv src.raw wc.qcow2 qcow2 -c cluster_size=$cs
	t "qemu reads our zlib cs=$cs" written_ok wc.qcow2 src.raw
	if [ $cs = 512 ] || [ $cs = 65536 ]; then # zstd at two sizes keeps the check short
		t "qemu zstd cs=$cs" qemu_conv -c -O qcow2 -o cluster_size=$cs,compression_type=zstd src.raw z.qcow2
		t "we read qemu zstd cs=$cs" reads_same z.qcow2
		t "we write zstd cs=$cs" ours_conv src.raw wz.qcow2 qcow2 -c cluster_size=$cs compression=zstd
		t "qemu reads our zstd cs=$cs" written_ok wz.qcow2 src.raw
	fi
	rm -f a.qcow2 c.qcow2 z.qcow2 w.qcow2 wc.qcow2 wz.qcow2
done

t "qemu v2" qemu_conv -O qcow2 -o compat=0.10 src.raw v2.qcow2
t "we read qemu v2" reads_same v2.qcow2
t "we write v2" ours_conv src.raw w2.qcow2 qcow2 compat=0.10
t "qemu reads our v2" written_ok w2.qcow2 src.raw
for rb in 1 8 64; do
	t "qemu refcount_bits=$rb" qemu_conv -O qcow2 -o refcount_bits=$rb src.raw r.qcow2
	t "we read qemu refcount_bits=$rb" reads_same r.qcow2
	t "we write refcount_bits=$rb" ours_conv src.raw wr.qcow2 qcow2 refcount_bits=$rb
	t "qemu reads our refcount_bits=$rb" written_ok wr.qcow2 src.raw
	rm -f r.qcow2 wr.qcow2
done

# Backing chain by qemu-img (raw <- qcow2 <- qcow2) with relative names.
mkdir -p chain
cp src.raw chain/base.raw
( cd chain &&
  qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 &&
  qemu-io -c "write -P 0x21 5M 70k" -c "write -z 100k 8k" mid.qcow2 >/dev/null &&
  qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 50M &&
  qemu-io -c "write -P 0x22 5M 1k" -c "write -P 0x23 45M 1M" top.qcow2 >/dev/null )
t "we read qemu backing chain" reads_same chain/top.qcow2
# Our overlay on qemu's chain.
t "we create an overlay" "$B" create qcow2 chain/ours.qcow2 0 backing=top.qcow2 backing_fmt=qcow2
t "we write the overlay" "$B" write chain/ours.qcow2 5000000 300000 3
t "we zero in the overlay" "$B" zero chain/ours.qcow2 6M 2M
"$B" read-all chain/ours.qcow2 ours.raw
t "qemu reads our overlay" written_ok chain/ours.qcow2 ours.raw

# Snapshots made by qemu-img: listed, active state read, COW writes over them.
qemu-img convert -O qcow2 src.raw s.qcow2
qemu-img snapshot -c one s.qcow2
qemu-io -c 'write -P 0x44 1M 2M' s.qcow2 >/dev/null
qemu-img snapshot -c two s.qcow2
t "we list qemu snapshots" sh -c "'$B' snapshot s.qcow2 -l | grep -q ' two '"
t "we read qemu snapshot image" reads_same s.qcow2
t "our check agrees" "$B" check s.qcow2
t "we write over snapshots" "$B" write s.qcow2 1500000 100000 9
t "we discard over snapshots" "$B" discard s.qcow2 8M 4M
"$B" read-all s.qcow2 s.raw
t "qemu reads our COW" written_ok s.qcow2 s.raw
t "qemu applies its snapshot after our writes" qemu-img snapshot -a one s.qcow2
t "snapshot one intact" sh -c "qemu-img convert -O raw s.qcow2 s1.raw && cmp s1.raw src.raw"

# Our snapshots, as qemu-img sees them.
t "we convert for snapshots" ours_conv src.raw os.qcow2 qcow2
t "we snapshot" "$B" snapshot os.qcow2 -c first
t "we write after snapshot" "$B" write os.qcow2 2M 3M 4
"$B" read-all os.qcow2 os-now.raw
t "we snapshot again" "$B" snapshot os.qcow2 -c second
t "qemu lists ours" sh -c "qemu-img snapshot -l os.qcow2 | grep -q second"
t "qemu checks our snapshots" qemu-img check -q os.qcow2
t "we delete a snapshot" "$B" snapshot os.qcow2 -d second
t "qemu checks after delete" qemu-img check -q os.qcow2
t "qemu applies our snapshot" qemu-img snapshot -a first os.qcow2
t "our snapshot content" sh -c "qemu-img convert -O raw os.qcow2 os1.raw && cmp os1.raw src.raw"
t "we apply back" sh -c "'$B' snapshot os.qcow2 -c third && '$B' snapshot os.qcow2 -a first && '$B' read-all os.qcow2 os2.raw && cmp os2.raw src.raw && qemu-img check -q os.qcow2"

# Resize, zero, discard.
t "we convert cs=4k" ours_conv src.raw rz.qcow2 qcow2 cluster_size=4096
t "we resize" "$B" resize rz.qcow2 3G
t "we write past the old end" "$B" write rz.qcow2 2G 65536 5
t "we zero" "$B" zero rz.qcow2 1M 1M unmap
t "we discard" "$B" discard rz.qcow2 10M 64k
"$B" read-all rz.qcow2 rz.raw
t "qemu reads resized" written_ok rz.qcow2 rz.raw

echo "$pass passed, $failn failed"
[ "$failn" -eq 0 ]
