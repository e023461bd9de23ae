#!/usr/bin/env bash
# Builds the default guest from Debian packages, without root:
#   OUT/vmlinuz              the stock kernel linux-image-amd64 points to
#   OUT/initramfs.cpio.gz    busybox, the virtio (and ext4) modules, /init
#   OUT/kernel-version       its release string
#   OUT/vmlinux              the ELF inside vmlinuz (for ELF/PVH entry tests)
#   OUT/rootfs.ext4          a 128 MiB ext4 root disk with the same tree
#                            (kept once made: the guest's changes persist)
# Downloads with `apt-get download` (cached in OUT/debs) and unpacks with
# `dpkg-deb -x`. Idempotent: nothing is downloaded twice, and the initramfs
# is rebuilt only when this script or the inputs changed.
#
# /init: mounts proc, sys and devtmpfs; loads the modules (dependencies
# first); with xvm.root=/dev/vda switches to the root disk; DHCP on eth0
# (xvm.net=dhcp: before running a command); prints "xvm-guest: init
# ready"; then
#   xvm.cmd="COMMANDS"   runs COMMANDS with sh, prints
#                        "xvm-guest: exit status N" and powers off
#   xvm.run=/PATH        the same with a script file
#   otherwise            a shell on the console; leaving it powers off.
# `poweroff -f` ends the VM with status 0. See docs/guest-kit.md.
set -euo pipefail

OUT=${1:-build/guest}
SCRIPT=$(readlink -f "$0")
mkdir -p "$OUT/debs"
OUT=$(readlink -f "$OUT")
DEBS=$OUT/debs

# Modules for the virtio devices and an ext4 root disk, by module name.
# Their dependencies are added from each module's modinfo.
MODULES="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
virtio_mmio virtio_blk virtio_net virtio_console virtio-rng crc32c_generic crc32c-intel
crc16 mbcache jbd2 ext4"

log() { echo "guest-kit: $*"; }
fail() { echo "guest-kit: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb cpio gzip; do
    command -v "$tool" >/dev/null || fail "$tool is missing (run: make deps)"
done

# ---- download (cached) ----
resolve_kernel() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
kpkg=$(resolve_kernel)
if [ -z "$kpkg" ] && [ "$(id -u)" -eq 0 ]; then
    # A fresh container has no package lists yet.
    log "updating the package lists (apt-get update)"
    apt-get update -qq >/dev/null 2>&1 || true
    kpkg=$(resolve_kernel)
fi
[ -n "$kpkg" ] || fail "cannot resolve linux-image-amd64 (package lists missing? run as root: apt-get update)"

fetch() { # package -> prints the .deb path
    local pkg=$1 deb
    deb=$(ls "$DEBS"/"${pkg}"_*.deb 2>/dev/null | head -1 || true)
    if [ -z "$deb" ]; then
        log "downloading $pkg" >&2
        (cd "$DEBS" && apt-get download -q "$pkg" >/dev/null 2>"$DEBS/apt.log") ||
            { cat "$DEBS/apt.log" >&2; fail "apt-get download $pkg failed"; }
        deb=$(ls "$DEBS"/"${pkg}"_*.deb | head -1)
    fi
    echo "$deb"
}
kdeb=$(fetch "$kpkg")
bdeb=$(fetch busybox-static)

stamp="$OUT/.stamp"
want_stamp="$(basename "$kdeb") $(basename "$bdeb") $(md5sum < "$SCRIPT" | cut -c1-32)"
if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initramfs.cpio.gz" ] && [ -f "$stamp" ] &&
   [ "$(cat "$stamp")" = "$want_stamp" ]; then
    log "up to date: $OUT/vmlinuz $OUT/initramfs.cpio.gz ($(cat "$OUT/kernel-version"))"
    exit 0
fi

work=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bdeb" "$work/busybox"

vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-* | head -1)
kver=${vmlinuz##*/vmlinuz-}
cp "$vmlinuz" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
echo "$kver" > "$OUT/kernel-version"

# The vmlinux ELF inside the bzImage, for tests of the ELF and PVH entries:
# the payload (setup header: payload_offset, payload_length) minus the
# size word the kernel build appends, decompressed.
le() { od -An -tu"$2" -j "$1" -N "$2" "$vmlinuz" | tr -d ' '; }
sects=$(le $((0x1F1)) 1)
[ "$sects" -ne 0 ] || sects=4
poff=$(( (sects + 1) * 512 + $(le $((0x248)) 4) ))
plen=$(le $((0x24C)) 4)
payload() { tail -c +$((poff + 1)) "$vmlinuz" | head -c "$1" || true; }  # tail may get SIGPIPE
magic=$(payload 4 | od -An -tx1 | tr -d ' ')
case $magic in
    fd377a58) payload $((plen - 4)) | xz -dc --single-stream > "$OUT/vmlinux.tmp" ;;
    28b52ffd) payload $((plen - 4)) | zstd -dcq > "$OUT/vmlinux.tmp" ;;
    1f8b*) payload "$plen" | gzip -dc > "$OUT/vmlinux.tmp" ;;
    *) log "note: $magic payload: no vmlinux extracted"; rm -f "$OUT/vmlinux.tmp" ;;
esac
[ -f "$OUT/vmlinux.tmp" ] && mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"

# ---- initramfs tree ----
root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,root,mnt,run,usr/bin,usr/sbin}
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list-full); do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done

# Modules: resolve dependencies from modinfo, copy (decompressed) in
# load order, and write modules.dep so busybox modprobe works too.
moddir=$work/kernel/lib/modules/$kver
declare -A modpath=() loaded=()
while IFS= read -r -d '' f; do
    name=${f##*/}
    name=${name%%.ko*}
    modpath[${name//-/_}]=$f
done < <(find "$moddir/kernel" -name '*.ko*' -print0)

modinfo_depends() { # file -> dependency names, one a line
    local f=$1
    case "$f" in
        *.ko.xz) xz -dc "$f" ;;
        *.ko.zst) zstd -dcq "$f" ;;
        *.ko.gz) gzip -dc "$f" ;;
        *) cat "$f" ;;
    esac | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' '\n' | sed '/^$/d'
}

order=()
add_module() { # name (recursive: dependencies first)
    local key=${1//-/_} dep
    [ -n "${loaded[$key]:-}" ] && return 0
    [ -n "${modpath[$key]:-}" ] || { log "note: module $1 not in this kernel (built in?)"; loaded[$key]=missing; return 0; }
    loaded[$key]=pending
    for dep in $(modinfo_depends "${modpath[$key]}"); do
        add_module "$dep"
    done
    loaded[$key]=yes
    order+=("$key")
}
for m in $MODULES; do add_module "$m"; done

kmods=$root/lib/modules/$kver
mkdir -p "$kmods"
: > "$root/etc/xvm-modules"
: > "$kmods/modules.dep"
for key in "${order[@]}"; do
    src=${modpath[$key]}
    rel=${src#"$moddir"/}
    rel=${rel%.ko*}.ko
    mkdir -p "$kmods/$(dirname "$rel")"
    case "$src" in
        *.ko.xz) xz -dc "$src" > "$kmods/$rel" ;;
        *.ko.zst) zstd -dcq "$src" > "$kmods/$rel" ;;
        *.ko.gz) gzip -dc "$src" > "$kmods/$rel" ;;
        *) cp "$src" "$kmods/$rel" ;;
    esac
    echo "/lib/modules/$kver/$rel" >> "$root/etc/xvm-modules"
done
# modules.dep as depmod writes it: every dependency, direct or not, the
# ones loaded last first (modprobe loads the list from its end).
declare -A pos=() tdeps=()
for i in "${!order[@]}"; do pos[${order[$i]}]=$i; done
trans_deps() { # key: sets tdeps[key] to its dependencies' keys, transitively
    local key=$1 dep d all=""
    [ -n "${tdeps[$key]+x}" ] && return 0
    for dep in $(modinfo_depends "${modpath[$key]}"); do
        d=${dep//-/_}
        [ -n "${modpath[$d]:-}" ] || continue
        trans_deps "$d"
        all="$all $d ${tdeps[$d]}"
    done
    tdeps[$key]=$all
}
relpath() { local r=${modpath[$1]#"$moddir"/}; echo "${r%.ko*}.ko"; }
for key in "${order[@]}"; do
    trans_deps "$key"
    deps=""
    for d in $(for d in ${tdeps[$key]}; do echo "${pos[$d]} $d"; done | sort -u -k1,1nr | cut -d' ' -f2); do
        deps="$deps $(relpath "$d")"
    done
    echo "$(relpath "$key"):$deps" >> "$kmods/modules.dep"
done

# /init (initramfs, stage 1): mounts, modules, optional switch to the root
# disk; then /etc/xvm-stage2 (on whichever root we end up): banner,
# network, xvm.cmd/xvm.run or a shell.
cat > "$root/init" <<'INIT'
#!/bin/sh
# xvm guest kit init, stage 1 (scripts/guest-kit.sh)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

# Modules for the devices this VM has, as udev would by modalias (loading
# all of them costs a second of a software CPU's time: each module's
# signature is checked): the virtio transports when there is a virtio
# PCI function (vendor 0x1af4) or virtio-mmio devices on the command line,
# then one driver per virtio device ID, and ext4 with the disk driver.
# xvm.modules=all on the kernel command line loads the whole set.
done_mods=" "
load() { # module name(s), with dependencies from modules.dep
    for m in "$@"; do
        case "$done_mods" in *" $m "*) continue ;; esac
        done_mods="$done_mods$m "
        modprobe "$m" 2>/dev/null
    done
}
if grep -q 'xvm\.modules=all' /proc/cmdline; then
    for m in $(cat /etc/xvm-modules); do
        insmod "$m" 2>/dev/null
    done
else
    for v in /sys/bus/pci/devices/*/vendor; do
        [ "$(cat "$v" 2>/dev/null)" = 0x1af4 ] && { load virtio virtio_ring virtio_pci; break; }
    done
    grep -q 'virtio_mmio\.device=' /proc/cmdline && load virtio virtio_ring virtio_mmio
    for d in /sys/bus/virtio/devices/*/device; do
        case "$(cat "$d" 2>/dev/null)" in
            0x0001) load virtio_net ;;
            0x0002) load virtio_blk crc32c_generic crc32c-intel crc16 mbcache jbd2 ext4 ;;
            0x0003) load virtio_console ;;
            0x0004) load virtio-rng ;;
        esac
    done
fi
n=$(wc -l < /proc/modules)
echo "xvm-guest: $n modules loaded"

# xvm.root=DEV: switch to the ext4 root disk (e.g. the kit's rootfs.ext4
# as the first virtio disk, /dev/vda) when it shows up within 5 s.
root=$(sed -n 's/.*xvm\.root=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$root" ]; then
    i=0
    while [ ! -b "$root" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    mkdir -p /newroot
    if [ -b "$root" ] && mount -t ext4 "$root" /newroot && [ -x /newroot/etc/xvm-stage2 ]; then
        echo "xvm-guest: switching to the root disk $root"
        mount --move /dev /newroot/dev
        umount /proc /sys
        exec switch_root /newroot /etc/xvm-stage2
    fi
    umount /newroot 2>/dev/null
    echo "xvm-guest: root disk $root not usable; staying in the initramfs"
fi
exec /etc/xvm-stage2
INIT
chmod 755 "$root/init"

cat > "$root/etc/xvm-stage2" <<'STAGE2'
#!/bin/sh
# xvm guest kit init, stage 2 (scripts/guest-kit.sh)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/kernel ] || mount -t sysfs sysfs /sys
[ -c /dev/null ] || mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
hostname xvm-guest
ip link set lo up 2>/dev/null

# xvm.cmd="..." / xvm.run=PATH / xvm.net=dhcp from the kernel command line.
cmdline=$(cat /proc/cmdline)
# A quoted value runs to the last double quote of the command line, so
# put a quoted xvm.cmd last if it contains quotes itself.
param() { # name -> value
    case " $cmdline" in
        *" $1=\""*) v=${cmdline#*"$1=\""}; echo "${v%\"*}" ;;
        *" $1="*) v=${cmdline#*"$1="}; echo "${v%% *}" ;;
    esac
}
xcmd=$(param xvm.cmd)
xrun=$(param xvm.run)
xnet=$(param xvm.net)

# Network: DHCP on eth0 (user-mode networking answers it), in the
# foreground if xvm.net=dhcp asks for it, else in the background for the
# interactive shell.
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    if [ "$xnet" = dhcp ]; then
        udhcpc -i eth0 -q -n -t 5 -s /etc/udhcpc.script >/dev/null 2>&1 ||
            echo "xvm-guest: no DHCP lease on eth0"
    elif [ -z "$xcmd$xrun" ]; then
        udhcpc -i eth0 -b -q -s /etc/udhcpc.script >/dev/null 2>&1
    fi
fi

echo "xvm-guest: init ready"
if [ -n "$xcmd" ] || [ -n "$xrun" ]; then
    if [ -n "$xcmd" ]; then sh -c "$xcmd"; else sh "$xrun"; fi
    echo "xvm-guest: exit status $?"
    sync
    poweroff -f
fi
while true; do
    setsid cttyhack sh -l
    echo "xvm-guest: shell exited, powering off"
    sync
    poweroff -f
done
STAGE2
chmod 755 "$root/etc/xvm-stage2"

cat > "$root/etc/udhcpc.script" <<'DHCP'
#!/bin/sh
# busybox udhcpc hook: configure the lease
case "$1" in
deconfig) ifconfig "$interface" 0.0.0.0 ;;
bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}"
    [ -n "$router" ] && { route del default 2>/dev/null; route add default gw "${router%% *}" dev "$interface"; }
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "xvm-guest: eth0 $ip via ${router:-none}" ;;
esac
exit 0
DHCP
chmod 755 "$root/etc/udhcpc.script"
cat > "$root/etc/profile" <<'PROFILE'
export PS1='xvm-guest:\w# '
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
PROFILE
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"

# ---- cpio (newc), no root needed ----
# Device nodes cannot be created without root: write their newc headers
# directly (the kernel needs /dev/console before devtmpfs is mounted),
# then append the tree archived by cpio with owner 0:0. The kernel
# unpacks concatenated archives.
newc_entry() { # name mode(octal) rdevmajor rdevminor
    local name=$1 mode=$2 maj=$3 min=$4 namesize pad
    namesize=$(( ${#name} + 1 ))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        0 $((8#$mode)) 0 0 1 0 0 0 0 "$maj" "$min" "$namesize" 0
    printf '%s\0' "$name"
    pad=$(( (4 - (110 + namesize) % 4) % 4 ))
    head -c "$pad" /dev/zero
}
{
    newc_entry dev 040755 0 0
    newc_entry dev/console 020600 5 1
    newc_entry dev/null 020666 1 3
    newc_entry TRAILER!!! 0 0 0
    # pad the first archive to a 512-byte boundary as cpio does
} > "$work/nodes.cpio"
size=$(stat -c %s "$work/nodes.cpio")
head -c $(( (512 - size % 512) % 512 )) /dev/zero >> "$work/nodes.cpio"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$work/tree.cpio"
cat "$work/nodes.cpio" "$work/tree.cpio" | gzip -9 -n > "$OUT/initramfs.cpio.gz.tmp"
mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
# ---- root disk (ext4, made without root by mke2fs -d) ----
# The same tree as the initramfs; the guest's changes persist, so an
# existing image is kept (delete it to start afresh).
if [ ! -f "$OUT/rootfs.ext4" ]; then
    if command -v mke2fs >/dev/null; then
        mkdir -p "$root/newroot" "$root/home" "$root/var"
        echo "xvm guest root disk" > "$root/etc/xvm-rootfs"
        rm -f "$OUT/rootfs.ext4.tmp"
        mke2fs -q -t ext4 -L xvm-root -d "$root" -E root_owner=0:0 "$OUT/rootfs.ext4.tmp" 128M >/dev/null &&
            mv "$OUT/rootfs.ext4.tmp" "$OUT/rootfs.ext4"
    else
        log "note: mke2fs missing (e2fsprogs): no root disk"
    fi
elif command -v debugfs >/dev/null; then
    # Keep the guest's data but bring the kit's own scripts up to date.
    {
        for f in etc/xvm-stage2 etc/udhcpc.script; do
            echo "rm /$f"
            echo "write $root/$f /$f"
            echo "sif /$f mode 0100755"
        done
    } > "$work/debugfs.cmd"
    debugfs -w -f "$work/debugfs.cmd" "$OUT/rootfs.ext4" >/dev/null 2>&1 ||
        log "note: could not update the scripts in $OUT/rootfs.ext4"
fi
echo "$want_stamp" > "$stamp"
log "built $OUT/vmlinuz ($kver) and $OUT/initramfs.cpio.gz ($(stat -c %s "$OUT/initramfs.cpio.gz") bytes, ${#order[@]} modules)"
