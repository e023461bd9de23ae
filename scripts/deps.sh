#!/usr/bin/env bash
# Installs every Debian package that xvm's build, tests and benchmarks need.
# The lists live in deps/*.list (one package per line, '#' comments), so each
# part of the project names its own. Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(cat deps/*.list | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all $(echo "$want" | wc -w) packages present"
    exit 0
fi
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages; run as root:"
    echo "  apt-get update && $cmd"
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
