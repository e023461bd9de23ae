#!/usr/bin/env bash
# `make bench`: runs every bench/*.sh against its peer (QEMU, qemu-img,
# qemu-nbd) in the same run and prints the ratios. Each script prints lines
# "bench: NAME xvm=... peer=... ratio=R" (ratio = xvm time / peer time, or
# peer throughput / xvm throughput: below 1 means xvm is faster).
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
bash scripts/deps.sh >/dev/null || exit 1
status=0
summary=$(mktemp)
for b in bench/*.sh; do
	[ "$(basename "$b")" = run.sh ] && continue
	echo "== $b"
	bash "$b" "$BUILD" 2>&1 | tee -a "$summary" || status=1
done
echo
echo "== summary (ratio < 1: xvm faster)"
grep '^bench:' "$summary" || echo "(no results)"
rm -f "$summary"
exit $status
