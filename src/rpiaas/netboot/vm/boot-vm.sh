#!/bin/sh
# boot-vm.sh: boot a virtual Pi (arm64, QEMU "virt", TCG) from the network.
#
#   scripts/netboot/vm/boot-vm.sh --tap TAP --mac MAC [--kernel FILE --initrd FILE]
#                         [--mem MB] [--cpus N] [--cache DIR] [--append TEXT] [--icount SHIFT]
#                         [--qmp SOCKET]
#
# The VM's only network card (virtio-net on virtio-mmio) has the MAC given, the
# node's hwaddr of the cluster config, and is plugged into the tap device TAP,
# which must exist (ip tuntap add dev TAP mode tap) and reach the boot server
# (in a bridge with its interface).  The kernel and initramfs are the ones
# prepare.sh builds (found in its cache unless given); the initramfs takes its
# address, host name and NFS root path by DHCP.  The serial console is this
# script's standard output.  QEMU exits when the VM powers off, and on any
# kernel panic (panic=1 with -no-reboot), so a failed boot never hangs.
#
# --icount SHIFT runs the virtual CPU at a fixed 2^SHIFT ns per instruction
# (QEMU's -icount shift=SHIFT,align=on): its speed no longer depends on what
# else the host runs, as long as the host keeps up (SHIFT 3: 125 million
# instructions a second).
#
# --qmp SOCKET opens QEMU's machine protocol on that Unix socket: the master's
# qemu power driver asks the VM to power down through it (system_powerdown).
set -eu

die() { echo "boot-vm: $*" >&2; exit 1; }
tap="" mac="" kernel="" initrd="" mem=256 cpus=1 cache="" append="" icount="" qmp=""
while [ $# -gt 0 ]; do
    case "$1" in
        --tap) tap=$2; shift 2 ;;
        --mac) mac=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --initrd) initrd=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --cpus) cpus=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --append) append=$2; shift 2 ;;
        --icount) icount=$2; shift 2 ;;
        --qmp) qmp=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[ -n "$tap" ] && [ -n "$mac" ] || die "--tap TAP and --mac MAC are required"
if [ -z "$kernel" ] || [ -z "$initrd" ]; then
    paths=$("$(dirname "$0")/prepare.sh" ${cache:+--cache "$cache"}) || die "prepare.sh failed"
    kernel=${kernel:-$(echo "$paths" | sed -n 's/^KERNEL=//p')}
    initrd=${initrd:-$(echo "$paths" | sed -n 's/^INITRD=//p')}
fi
case "$cpus" in ""|*[!0-9]*|0*) die "--cpus: expected a positive number, got '$cpus'" ;; esac
case "$icount" in ""|[0-9]|10) ;; *) die "--icount: expected a shift of 0 to 10, got '$icount'" ;; esac
command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 is needed (apt install qemu-system-arm)"
exec qemu-system-aarch64 -M virt -cpu cortex-a53 -smp "$cpus" -m "$mem" \
    -nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot \
    ${icount:+-icount "shift=$icount,align=on,sleep=on"} \
    ${qmp:+-qmp "unix:$qmp,server=on,wait=off"} \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyAMA0 panic=1 loglevel=4 $append" \
    -netdev "tap,id=net0,ifname=$tap,script=no,downscript=no" \
    -device "virtio-net-device,netdev=net0,mac=$mac"
