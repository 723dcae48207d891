#!/bin/sh
# prepare-nfsroot.sh: one NFS root file system per node, from a Raspberry Pi OS image.
#
#   sudo scripts/netboot/prepare-nfsroot.sh --render DIR --image raspios-lite-arm64.img
#   sudo scripts/netboot/prepare-nfsroot.sh --render DIR --root-from /mnt/root --boot-from /mnt/boot
#   sudo scripts/netboot/prepare-nfsroot.sh --render DIR --minimal --busybox FILE --master URL
#
# DIR is the output of `rpiaas netboot render` (its nodes.json names every node,
# its address and its NFS root path).  For each node the script
#   1. copies the image's root file system to the node's root path (rsync -aHAX);
#   2. sets its hostname (/etc/hostname, /etc/hosts);
#   3. rewrites /etc/fstab: the SD card partitions go (the root comes over NFS),
#      /boot/firmware is not mounted, tmpfs takes /tmp;
#   4. turns off what hurts on NFS: the swap file (dphys-swapfile) and the
#      first-boot partition resize;
#   5. installs the rpiaas agent into /opt/rpiaas-agent, by running the image's
#      own programs under chroot (on an x86 server that needs qemu-user-static
#      with binfmt_misc; the chroot needs network access): its libraries are the
#      distribution's packages python3-aiohttp and python3-psutil (apt-get
#      install in the chroot, unless the image has them; Raspberry Pi OS
#      bookworm's are aiohttp 3.8.4 and psutil 5.9.4: no compiler, security
#      updates with the system's); the agent itself (--agent-src DIR, default
#      the repository's agent/) goes into a virtual environment made with
#      --system-site-packages, by pip install --no-deps; the libraries found
#      must be as new as the agent requires.  --agent-wheels instead makes a
#      plain virtual environment and lets pip install aiohttp and psutil too
#      (wheels from PyPI, or piwheels on 32-bit Raspberry Pi OS), for an image
#      without a usable apt or with too old packages.  The settings go in
#      /etc/rpiaas-agent/agent.toml (name = the node's name), the node's own
#      token in /etc/rpiaas-agent/token (mode 640: HMAC-SHA256 of the node's
#      name keyed with the secret of --node-secret-file, the master's
#      node_secret_file; no node's root holds another's token; written with
#      --no-agent too), master_url set to
#      --master-url (the agent then reports the node's boot there when it
#      starts), and the systemd unit enabled.  --no-agent skips this step.
# and, with --image or --boot-from, copies the boot partition to DIR/boot-files
# for `rpiaas netboot render --boot-files DIR/boot-files` (render again after).
#
# --minimal makes, instead, a minimal root per node for tests (scripts/netboot/vm/):
# a static busybox (--busybox FILE, of the nodes' architecture) and an
# /sbin/init that reports the boot to the master at URL (POST
# URL/api/v1/nodes/<name>/booted with its uptime; authenticated by its
# token, from --node-secret-file, and its address), writes
# the marker file /rpiaas-booted into its own root, and powers off.  On a
# real Pi the agent's service makes the same report when it starts.
#
# Run as root.  Nothing outside the nodes' root paths and DIR/boot-files is
# written; an image is attached read-only and detached on exit.  See docs/netboot.md.
set -eu

usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "prepare-nfsroot: $*" >&2; exit 1; }

render="" image="" root_from="" boot_from="" master_url="" agent=1 agent_wheels=0
minimal=0 busybox="" master="" node_secret_file=""
agent_src=$(cd "$(dirname "$0")/../../agent" 2>/dev/null && pwd || true)
while [ $# -gt 0 ]; do
    case "$1" in
        --render) render=$2; shift 2 ;;
        --image) image=$2; shift 2 ;;
        --root-from) root_from=$2; shift 2 ;;
        --boot-from) boot_from=$2; shift 2 ;;
        --agent-token-file) die "--agent-token-file: one token shared by every node is no longer taken; give --node-secret-file (see docs/security.md)" ;;
        --master-url) master_url=$2; shift 2 ;;
        --agent-src) agent_src=$2; shift 2 ;;
        --no-agent) agent=0; shift ;;
        --agent-wheels) agent_wheels=1; shift ;;
        --minimal) minimal=1; shift ;;
        --busybox) busybox=$2; shift 2 ;;
        --master) master=$2; shift 2 ;;
        --node-secret-file|--boot-secret-file) node_secret_file=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "prepare-nfsroot: unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$render" ] || die "--render DIR is required"
[ -f "$render/nodes.json" ] || die "$render: not a rendered netboot directory (no nodes.json)"
if [ "$minimal" = 1 ]; then
    exec "$(dirname "$0")/vm/make-minimal-root.sh" --render "$render" --busybox "$busybox" \
        --master "$master" ${node_secret_file:+--boot-secret-file "$node_secret_file"}
fi
[ -n "$image" ] || [ -n "$root_from" ] || die "give --image FILE or --root-from DIR"
[ "$(id -u)" = 0 ] || die "run as root (the roots belong to root and other users)"
command -v rsync >/dev/null || die "rsync is needed (apt install rsync)"
command -v python3 >/dev/null || die "python3 is needed to read nodes.json"
if [ "$agent" = 1 ]; then
    [ -f "$agent_src/pyproject.toml" ] || die "agent source not found at '$agent_src' (--agent-src DIR)"
fi
if [ -n "$node_secret_file" ] && [ ! -r "$node_secret_file" ]; then die "cannot read $node_secret_file"; fi

work=$(mktemp -d)
loop=""
cleanup() {
    for m in "$work/boot" "$work/root"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
    [ -n "$loop" ] && losetup -d "$loop"
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -n "$image" ]; then
    [ -f "$image" ] || die "no such image: $image"
    loop=$(losetup --find --show --read-only --partscan "$image")
    mkdir "$work/boot" "$work/root"
    mount -o ro "${loop}p1" "$work/boot"
    mount -o ro "${loop}p2" "$work/root"
    root_from="$work/root" boot_from="$work/boot"
fi
[ -d "$root_from/etc" ] || die "$root_from does not look like a root file system (no etc/)"

if [ -n "$boot_from" ]; then
    mkdir -p "$render/boot-files"
    rsync -rt --delete --exclude cmdline.txt "$boot_from/" "$render/boot-files/"
    echo "boot files: $render/boot-files (render again with --boot-files $render/boot-files)"
fi

# one line per node: name hostname address root_path token (- without a secret);
# $work is mode 700: the tokens stay the owner's
python3 - "$render/nodes.json" "$node_secret_file" > "$work/nodes" <<'EOF'
import hashlib, hmac, json, sys
secret = open(sys.argv[2]).read().strip() if sys.argv[2] else ""
for n in json.load(open(sys.argv[1]))["nodes"]:
    token = hmac.new(secret.encode(), n["name"].encode(), hashlib.sha256).hexdigest() if secret else "-"
    print(n["name"], n["hostname"], n["address"], n["root_path"], token)
EOF

# the agent's libraries as the distribution's packages, installed under chroot
# in a private mount namespace that lends apt and dpkg the host's /dev, /proc
# and DNS settings (they vanish with it, on any exit)
distro_packages() {  # ROOT NAME
    # (Debian's ensurepip, for python3 -m venv, comes with python3-venv)
    if chroot "$1" /usr/bin/python3 -c 'import aiohttp, psutil, ensurepip' 2>/dev/null; then
        return 0  # the image has them already
    fi
    chroot "$1" /usr/bin/apt-get --version >/dev/null 2>&1 \
        || die "$2: the image has no usable apt-get for python3-aiohttp and python3-psutil (give --agent-wheels)"
    DEBIAN_FRONTEND=noninteractive unshare --mount sh -eu -c '
        mount --bind /dev "$1/dev"
        mount -t proc proc "$1/proc"
        if [ -f "$1/etc/resolv.conf" ] && [ ! -L "$1/etc/resolv.conf" ] && [ -e /etc/resolv.conf ]; then
            mount --bind /etc/resolv.conf "$1/etc/resolv.conf"
        fi
        chroot "$1" apt-get update -q
        chroot "$1" apt-get install -y -q python3-aiohttp python3-psutil python3-venv
        chroot "$1" apt-get clean' sh "$1" </dev/null >"$work/apt.log" 2>&1 \
        || { tail -n 20 "$work/apt.log" >&2
             die "$2: apt-get install python3-aiohttp python3-psutil in the chroot failed (it needs network access; or give --agent-wheels)"; }
}

# fails, naming them, if the libraries found are older than the agent requires
cat > "$work/check-deps.py" <<'EOF'
import re, sys
from importlib import metadata
def release(version): return tuple(int(n) for n in re.findall(r"\d+", version)[:3])
for req in metadata.requires("rpiaas-agent") or []:
    m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)\s*$", req)
    if m and release(metadata.version(m[1])) < release(m[2]):
        sys.exit(f"{m[1]} {metadata.version(m[1])} is older than the agent's {req}")
EOF

# (the list on descriptor 3: what runs under chroot may read its standard input)
while read -r name host address root token <&3; do
    echo "$name: $root"
    mkdir -p "$root"
    rsync -aHAX --delete --numeric-ids --exclude '/proc/*' --exclude '/sys/*' --exclude '/dev/*' \
        --exclude '/tmp/*' --exclude '/run/*' "$root_from/" "$root/"
    echo "$host" > "$root/etc/hostname"
    sed -i '/[[:space:]]rpiaas-node$/d; /^127\.0\.1\.1[[:space:]]/d' "$root/etc/hosts"
    printf '127.0.1.1\t%s %s\n%s\t%s %s rpiaas-node\n' "$name" "$host" "$address" "$name" "$host" \
        >> "$root/etc/hosts"
    cat > "$root/etc/fstab" <<EOF
# rpiaas network boot: the root file system comes over NFS (see cmdline.txt),
# the boot files over TFTP; no SD card is mounted.
proc            /proc   proc    defaults                0 0
tmpfs           /tmp    tmpfs   defaults,nosuid,nodev   0 0
EOF
    rm -f "$root/etc/systemd/system/multi-user.target.wants/dphys-swapfile.service" \
          "$root/etc/rc3.d/S01resize2fs_once" \
          "$root/etc/systemd/system/multi-user.target.wants/rpi-resize.service"
    if [ "$agent" = 1 ]; then
        mkdir -p "$root/opt/rpiaas-agent" "$root/etc/rpiaas-agent"
        rsync -a --delete --exclude '*.egg-info' --exclude __pycache__ "$agent_src/" "$root/opt/rpiaas-agent/src/"
        chroot "$root" /usr/bin/python3 -c pass \
            || die "cannot run the image's python3 under chroot (on x86: apt install qemu-user-static)"
        if [ "$agent_wheels" = 1 ]; then
            chroot "$root" /usr/bin/python3 -m venv /opt/rpiaas-agent/venv \
                || die "$name: cannot make a virtual environment (the image needs python3-venv)"
            chroot "$root" /opt/rpiaas-agent/venv/bin/pip install --quiet /opt/rpiaas-agent/src \
                || die "$name: pip install of the agent failed (the chroot needs network access)"
        else
            distro_packages "$root" "$name"
            chroot "$root" /usr/bin/python3 -m venv --system-site-packages /opt/rpiaas-agent/venv \
                || die "$name: cannot make a virtual environment (the image needs python3-venv)"
            chroot "$root" /opt/rpiaas-agent/venv/bin/pip install --quiet --no-deps /opt/rpiaas-agent/src \
                || die "$name: pip install of the agent failed (the chroot needs network access)"
        fi
        chroot "$root" /opt/rpiaas-agent/venv/bin/python - < "$work/check-deps.py" \
            || die "$name: the agent's libraries are too old (give --agent-wheels for newer ones from PyPI)"
        ln -sf /opt/rpiaas-agent/venv/bin/rpiaas-agent "$root/usr/local/bin/rpiaas-agent"
        sed -e "s/^# name = .*/name = \"$name\"/" \
            -e "s|^# master_url = .*|${master_url:+master_url = \"$master_url\"}|" \
            "$agent_src/config.example.toml" > "$root/etc/rpiaas-agent/agent.toml"
        grep -q '^rpiaas-agent:' "$root/etc/passwd" \
            || chroot "$root" /usr/sbin/useradd --system --no-create-home --shell /usr/sbin/nologin rpiaas-agent
        install -m 644 "$agent_src/systemd/rpiaas-agent.service" "$root/etc/systemd/system/"
        mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
        ln -sf /etc/systemd/system/rpiaas-agent.service \
            "$root/etc/systemd/system/multi-user.target.wants/rpiaas-agent.service"
    fi
    if [ "$token" != - ]; then  # this node's own token, for its agent (installed now or later)
        mkdir -p "$root/etc/rpiaas-agent"
        (umask 027 && printf '%s\n' "$token" > "$root/etc/rpiaas-agent/token")
        chmod 640 "$root/etc/rpiaas-agent/token"
        chroot "$root" /bin/chgrp rpiaas-agent /etc/rpiaas-agent/token 2>/dev/null || true
    fi
done 3< "$work/nodes"
echo "done: $(wc -l < "$work/nodes") node roots; check them with: rpiaas netboot check $render"
