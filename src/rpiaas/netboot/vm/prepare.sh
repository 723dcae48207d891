#!/bin/sh
# prepare.sh: the kernel, initramfs and busybox of a virtual Pi (arm64, QEMU "virt").
#
#   scripts/netboot/vm/prepare.sh [--cache DIR]
#
# Downloads, with `apt-get download` (no package is installed), the current
# Debian arm64 kernel (the package linux-image-arm64 depends on) and
# busybox-static:arm64, unpacks them with `dpkg-deb -x`, and builds an
# initramfs of busybox, the kernel modules the network boot needs (virtio_mmio,
# virtio_net, nfsv3 and what they depend on, indexed with `depmod -b`) and an
# /init that
#   1. loads the modules and brings up eth0;
#   2. takes a DHCP lease (busybox udhcpc), sets the host name it was given;
#   3. mounts the root path it was given ("server:/path,options", option 17)
#      with the kernel's NFS client, read-write;
#   4. switches root to it and runs its /sbin/init.
# Any failure is printed on the console as "rpiaas-initramfs: FAILED: <why>"
# and powers the VM off (QEMU exits).
#
# Everything goes to the cache directory (--cache, else $RPIAAS_VM_CACHE, else
# ~/.cache/rpiaas/vm): the .deb files in debs/, the artefacts in <kernel
# version>/.  A second run downloads and builds nothing.  On success the last
# lines of the output are, for the shell or a test to read:
#   KERNEL=<path of vmlinuz>
#   INITRD=<path of the initramfs>
#   BUSYBOX=<path of the arm64 busybox, for the nodes' roots>
#
# Needs: apt-get with the arm64 architecture added (dpkg --add-architecture
# arm64 && apt-get update), dpkg-deb, depmod (kmod), cpio, gzip.  See README.md.
set -eu

die() { echo "prepare: $*" >&2; exit 1; }
cache=${RPIAAS_VM_CACHE:-${HOME:-/root}/.cache/rpiaas/vm}
while [ $# -gt 0 ]; do
    case "$1" in
        --cache) cache=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) die "unknown argument: $1" ;;
    esac
done
PATH=$PATH:/usr/sbin:/sbin
for tool in apt-get apt-cache dpkg-deb depmod cpio gzip; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt install apt dpkg kmod cpio gzip)"
done
{ dpkg --print-architecture; dpkg --print-foreign-architectures; } 2>/dev/null | grep -qx arm64 \
    || die "apt does not know the arm64 architecture: dpkg --add-architecture arm64 && apt-get update"

mkdir -p "$cache/debs"
cache=$(cd "$cache" && pwd)

# The kernel package is the one the meta-package points at today; once it is
# cached, the cached one is used (no network needed, the same kernel each run).
kpkg=$(ls "$cache/debs" | sed -n 's/^\(linux-image-[0-9][^_]*-arm64\)_.*_arm64\.deb$/\1/p' | sort -V | tail -n 1)
if [ -z "$kpkg" ]; then
    kpkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null \
           | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*-arm64\).*/\1/p' | head -n 1)
    [ -n "$kpkg" ] || die "no arm64 kernel package known to apt (apt-get update after adding arm64?)"
fi
kver=${kpkg#linux-image-}
fetch() {  # fetch PACKAGE: its .deb in debs/, downloaded once
    pkg=${1%%:*}
    deb=$(ls "$cache/debs/${pkg}"_*_arm64.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ]; then
        echo "prepare: downloading $1" >&2
        # apt's sandbox user may not write the cache; download as ourselves
        (cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$1" >&2) \
            || die "apt-get download $1 failed"
        deb=$(ls "$cache/debs/${pkg}"_*_arm64.deb | head -n 1)
    fi
    echo "$deb"
}
kdeb=$(fetch "$kpkg:arm64")
bdeb=$(fetch busybox-static:arm64)

out="$cache/$kver"
here=$(cd "$(dirname "$0")" && pwd)
# built again when the init or this script changes
stamp=$( (cat "$here/initramfs-init" "$0"; echo "$kdeb $bdeb") | sha256sum | cut -c1-16)
if [ "$(cat "$out/done" 2>/dev/null)" = "$stamp" ]; then
    echo "prepare: cached in $out" >&2
else
    echo "prepare: building $out" >&2
    rm -rf "$out" && mkdir -p "$out"
    tmp="$out/tmp" && mkdir -p "$out/tmp"
    dpkg-deb -x "$kdeb" "$tmp/kernel"
    dpkg-deb -x "$bdeb" "$tmp/busybox"
    cp "$tmp/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"
    cp "$tmp/busybox/bin/busybox" "$out/busybox"
    depmod -b "$tmp/kernel" "$kver"
    mods="$tmp/kernel/lib/modules/$kver"
    initrd="$tmp/initrd"
    mkdir -p "$initrd/bin" "$initrd/proc" "$initrd/sys" "$initrd/dev" "$initrd/newroot" \
             "$initrd/run" "$initrd/lib/modules/$kver"
    cp "$out/busybox" "$initrd/bin/busybox"
    # the modules asked for and every one they need (modules.dep lists them all)
    for m in virtio_mmio virtio_net nfsv3; do
        line=$(grep -E "(^|/)$m\.ko:" "$mods/modules.dep") || die "$kver has no module $m"
        for f in $(echo "$line" | tr -d :); do
            mkdir -p "$initrd/lib/modules/$kver/$(dirname "$f")"
            cp "$mods/$f" "$initrd/lib/modules/$kver/$f"
        done
    done
    cp "$mods/modules.order" "$mods/modules.builtin" "$mods/modules.builtin.modinfo" \
       "$initrd/lib/modules/$kver/"
    depmod -b "$initrd" "$kver"
    cp "$here/initramfs-init" "$initrd/init"
    chmod 755 "$initrd/init"
    (cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initrd.img"
    rm -rf "$tmp"
    echo "$stamp" > "$out/done"
fi
echo "KERNEL=$out/vmlinuz"
echo "INITRD=$out/initrd.img"
echo "BUSYBOX=$out/busybox"
