#!/bin/sh
# make-agent-root.sh: per node, an NFS root in which a virtual Pi runs the real rpiaas agent.
#
#   scripts/netboot/vm/make-agent-root.sh --render DIR --master URL --node-secret-file FILE
#                         [--cache DIR] [--agent-src DIR] [--busybox FILE] [--cores N]
#
# DIR is the output of `rpiaas netboot render`; each node of its nodes.json
# gets its root path (absolute; emptied first) filled with a Debian bookworm
# arm64 userland, as on a Raspberry Pi OS (bookworm) node: python3.11 and the
# agent's dependencies from Debian's own packages (python3-aiohttp 3.8.4,
# python3-psutil 5.9.4), downloaded with `apt-get download` and unpacked with
# `dpkg-deb -x` (nothing is installed on this machine, no arm64 code runs on
# it), plus
#   /usr/local/lib/python3.11/dist-packages/rpiaas_agent
#                         the agent, copied from --agent-src (default: the
#                         repository's agent/ directory);
#   /etc/rpiaas-agent/agent.toml
#                         name = the node's name, port 8081 on every address,
#                         master_url = URL (the agent reports its node's boot
#                         there when it starts), no vcgencmd, cores = N with
#                         --cores (and oversubscribe = true: a VM with fewer
#                         CPUs stands for a node with N cores);
#   /etc/rpiaas-agent/token
#                         the node's own token (mode 600): HMAC-SHA256 of its
#                         name keyed with the secret in FILE, the master's
#                         node_secret_file;
#   /bin/busybox          a static arm64 busybox (--busybox FILE, default the
#                         one prepare.sh prints as BUSYBOX=);
#   /sbin/init            mounts /proc, /sys, /tmp and /run, prints
#                         "rpiaas-node: <name> starting the agent at <uptime> s",
#                         runs the agent (its log on the console), restarts it
#                         if it fails (at most 3 runs), and powers off when it
#                         exits cleanly or keeps failing.  A failure before the
#                         agent runs prints "rpiaas-node: FAILED: <why>" and
#                         powers off: QEMU exits, a failed node never hangs.
# One line per node is printed.
#
# The userland is built once, as a base root in the cache (--cache, else
# $RPIAAS_VM_CACHE, else ~/.cache/rpiaas/vm; the .deb files go to its debs/),
# byte-compiled ahead with this machine's python3 when its bytecode is that
# of bookworm's python3.11 (Debian's packages ship no .pyc, and compiling
# aiohttp on every boot under TCG costs seconds); it is rebuilt only when the
# packages or this script change.  Each node's root is a copy of it
# (cp -a) with the agent and the node's files added.
#
# Needs: apt-get with the arm64 architecture added (dpkg --add-architecture
# arm64 && apt-get update), dpkg-deb, python3.  Run as root (the NFS server
# serves the files as they are owned).  See README.md.
set -eu

die() { echo "make-agent-root: $*" >&2; exit 1; }
say() { echo "make-agent-root: $*" >&2; }
here=$(cd "$(dirname "$0")" && pwd -P)
render="" master="" secret_file="" busybox="" cores=""
cache=${RPIAAS_VM_CACHE:-${HOME:-/root}/.cache/rpiaas/vm}
# the checkout's agent/: this script is src/rpiaas/netboot/vm/ in it (scripts/netboot/vm links here)
agent_src=$(cd "$here/../../../../agent" 2>/dev/null && pwd || true)
while [ $# -gt 0 ]; do
    case "$1" in
        --render) render=$2; shift 2 ;;
        --master) master=$2; shift 2 ;;
        --node-secret-file) secret_file=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --agent-src) agent_src=$2; shift 2 ;;
        --busybox) busybox=$2; shift 2 ;;
        --cores) cores=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[ -n "$render" ] || die "--render DIR is required"
[ -f "$render/nodes.json" ] || die "$render: not a rendered netboot directory (no nodes.json)"
case "$master" in http://?*|https://?*) ;; *) die "--master URL: expected http://host:port, got '$master'" ;; esac
[ -n "$secret_file" ] || die "--node-secret-file FILE is required (the master's node_secret_file)"
[ -r "$secret_file" ] || die "cannot read $secret_file"
case "$cores" in "") ;; *[!0-9]*|0*) die "--cores N: expected a positive integer, got '$cores'" ;; esac
[ -n "$agent_src" ] && [ -f "$agent_src/rpiaas_agent/__main__.py" ] \
    || die "agent source not found at '${agent_src:-$here/../../../../agent}' (no rpiaas_agent/__main__.py; give --agent-src DIR)"
PATH=$PATH:/usr/sbin:/sbin
for tool in apt-get dpkg-deb python3 sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
{ dpkg --print-architecture; dpkg --print-foreign-architectures; } 2>/dev/null | grep -qx arm64 \
    || die "apt does not know the arm64 architecture: dpkg --add-architecture arm64 && apt-get update"
if [ -z "$busybox" ]; then
    busybox=$("$here/prepare.sh" --cache "$cache" | sed -n 's/^BUSYBOX=//p') || true
    [ -n "$busybox" ] || die "prepare.sh failed (it provides the arm64 busybox; or give --busybox FILE)"
fi
[ -f "$busybox" ] || die "--busybox $busybox: no such file"

# The packages, from bookworm's dependency data:
#   apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
#       --no-breaks --no-replaces --no-enhances \
#       python3.11-minimal:arm64 libpython3.11-stdlib:arm64 python3-aiohttp:arm64 python3-psutil:arm64
# less what running python3.11 and the agent does not need: the python3,
# python3-minimal and python3.11 meta-packages (symlinks, and through them
# dpkg, tar, perl, install-info), and the libraries only stdlib modules that
# the agent never imports link to (checked below: nothing else needs them):
# libncursesw6, libtinfo6, libreadline8, readline-common (curses, readline),
# libdb5.3 (dbm), libnsl2, libtirpc3 and Kerberos (nis), libsqlite3-0
# (sqlite3), libuuid1 (_uuid; uuid works without it), libcrypt1 (crypt).
# Arch: all packages have no ":arm64".
PACKAGES="
libc6:arm64 libgcc-s1:arm64 gcc-12-base:arm64
zlib1g:arm64 libexpat1:arm64 libssl3:arm64 libffi8:arm64 libbz2-1.0:arm64 liblzma5:arm64
python3.11-minimal:arm64 libpython3.11-minimal:arm64 libpython3.11-stdlib:arm64 media-types
python3-aiohttp:arm64 python3-multidict:arm64 python3-yarl:arm64 python3-frozenlist:arm64
python3-aiosignal python3-async-timeout python3-attr python3-charset-normalizer python3-idna
python3-psutil:arm64
"
# stdlib modules whose libraries are left out (they fail to import, as intended)
LEFT_OUT_MODULES="_curses _curses_panel readline _dbm nis _sqlite3 _uuid _crypt"

mkdir -p "$cache/debs"
cache=$(cd "$cache" && pwd)
debs="$cache/debs"
cached_deb() {  # cached_deb PACKAGE[:arm64]: the newest cached .deb of it, or nothing
    p=${1%%:*}
    case "$1" in *:arm64) a=arm64 ;; *) a=all ;; esac
    ls "$debs/${p}"_*_"$a".deb 2>/dev/null | sort -V | tail -n 1
}
missing=""
for p in $PACKAGES; do
    [ -n "$(cached_deb "$p")" ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "downloading$missing"
    # apt's sandbox user may not write the cache; download as ourselves
    (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root $missing >&2) \
        || die "apt-get download failed"
fi
files=""
for p in $PACKAGES; do
    f=$(cached_deb "$p")
    [ -n "$f" ] || die "$p: no .deb after apt-get download"
    files="$files $f"
done

# ---------------------------------------------------------------- the base root, once
base="$cache/agent-root"
stamp=$( (cat "$0"; for f in $files; do basename "$f"; done) | sha256sum | cut -c1-16)
if [ "$(cat "$base/done" 2>/dev/null)" = "$stamp" ]; then
    say "base root cached in $base/root"
else
    say "building the base root in $base/root"
    rm -rf "$base" && mkdir -p "$base/root"
    r="$base/root"
    for f in $files; do
        dpkg-deb -x "$f" "$r" || die "dpkg-deb -x $f failed"
    done
    # not needed to run python: documentation, and glibc's iconv modules (20 MB; python
    # has its own codecs, and the C.UTF-8 locale is built into glibc)
    rm -rf "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/lintian" "$r/usr/share/locale" \
           "$r/usr/share/info" "$r/usr/share/bug" "$r/usr/lib/aarch64-linux-gnu/gconv"
    ln -sf python3.11 "$r/usr/bin/python3"  # what the python3-minimal package would add
    [ -x "$r/usr/bin/python3.11" ] || die "no usr/bin/python3.11 in the unpacked packages"
    grep -q '"local/lib"' "$r/usr/lib/python3.11/site.py" \
        || die "bookworm's site.py does not put /usr/local/lib/python3.11/dist-packages on sys.path"
    # Every shared object's libraries are there, but those of the modules left out.
    if command -v readelf >/dev/null; then
        for f in $(find "$r" -type f -name '*.so*') "$r/usr/bin/python3.11"; do
            for lib in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
                [ -e "$r/lib/aarch64-linux-gnu/$lib" ] || [ -e "$r/usr/lib/aarch64-linux-gnu/$lib" ] \
                    || [ -e "$(dirname "$f")/$lib" ] || echo "${f#"$r"} $lib"
            done
        done > "$base/unresolved"
        while read -r f lib; do
            m=$(basename "$f" | sed 's/\..*//')
            case " $LEFT_OUT_MODULES " in *" $m "*) ;; *) die "$f needs $lib, which is not in the package list" ;; esac
        done < "$base/unresolved"
    else
        say "note: no readelf (binutils): the shared libraries' dependencies are not checked"
    fi
    mkdir -p "$r/bin" "$r/sbin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/run" \
             "$r/root" "$r/var/tmp" "$r/usr/local/bin" "$r/usr/local/lib/python3.11/dist-packages"
    chmod 1777 "$r/tmp" "$r/var/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
    printf 'root:x:0:\n' > "$r/etc/group"
    # Absolute symbolic links made relative (/usr/lib/python3.11/sitecustomize.py points at
    # /etc/python3.11/): here they would lead out of the root, to this machine's files.
    python3 - "$r" <<'PY'
import os, sys
root = sys.argv[1]
for d, dirs, files in os.walk(root):
    for f in dirs + files:
        p = os.path.join(d, f)
        if os.path.islink(p) and os.readlink(p).startswith("/"):
            target = root + os.readlink(p)
            os.unlink(p)
            os.symlink(os.path.relpath(target, d), p)
PY
    # Byte-compiled ahead, with the paths the VM sees, if this python3 writes bookworm's bytecode.
    want=$(sed -n 's/^MAGIC_NUMBER = (\([0-9]*\)).to_bytes.*/\1/p' \
           "$r/usr/lib/python3.11/importlib/_bootstrap_external.py")
    have=$(python3 -c 'import importlib.util as u; print(int.from_bytes(u.MAGIC_NUMBER[:2], "little"))')
    if [ -n "$want" ] && [ "$want" = "$have" ]; then
        python3 -m compileall -q -j 0 --invalidation-mode timestamp -s "$r" -p / \
            -x '/lib2to3/tests/' "$r/usr/lib/python3.11" "$r/usr/lib/python3/dist-packages" >&2 \
            || die "compileall of the base root failed"
        echo "$have" > "$base/magic"
    else
        say "note: not byte-compiled: this python3 writes bytecode $have, bookworm's python3.11 reads ${want:-?}"
    fi
    echo "$stamp" > "$base/done"
fi

# ---------------------------------------------------------------- the agent, compiled once per run
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
trap 'exit 1' INT TERM
site="usr/local/lib/python3.11/dist-packages"
mkdir -p "$stage/$site"
cp -R "$agent_src/rpiaas_agent" "$stage/$site/"
find "$stage/$site/rpiaas_agent" -name __pycache__ -prune -exec rm -rf {} +
if [ -f "$base/magic" ]; then
    python3 -m compileall -q --invalidation-mode timestamp -s "$stage" -p / \
        "$stage/$site/rpiaas_agent" >&2 || die "compileall of the agent failed"
fi

# ---------------------------------------------------------------- per node
# one line per node: name hostname address root_path token
python3 - "$render/nodes.json" "$secret_file" > "$stage/nodes" <<'PY' || die "cannot read $render/nodes.json"
import hashlib, hmac, json, sys
secret = open(sys.argv[2]).read().strip()
for n in json.load(open(sys.argv[1]))["nodes"]:
    token = hmac.new(secret.encode(), n["name"].encode(), hashlib.sha256).hexdigest()
    print(n["name"], n["hostname"], n["address"], n["root_path"], token)
PY
while read -r name host address root token; do
    case "$root" in /?*) ;; *) die "$name: root path '$root' is not absolute" ;; esac
    [ "$root" != / ] || die "$name: root path is /"
    mkdir -p "$root"
    find "$root" -mindepth 1 -delete
    cp -a "$base/root/." "$root/"
    cp -a "$stage/usr/." "$root/usr/"
    install -m 755 "$busybox" "$root/bin/busybox"
    ln -sf busybox "$root/bin/sh"
    echo "$host" > "$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost\n%s\t%s %s\n' "$address" "$name" "$host" \
        > "$root/etc/hosts"
    mkdir -p "$root/etc/rpiaas-agent"
    (umask 077 && printf '%s\n' "$token" > "$root/etc/rpiaas-agent/token")
    chmod 600 "$root/etc/rpiaas-agent/token"
    {
        echo "# rpiaas agent of the virtual Pi $name (make-agent-root.sh)"
        echo "name = \"$name\""
        echo 'host = "0.0.0.0"'
        echo 'port = 8081'
        echo 'token_file = "/etc/rpiaas-agent/token"'
        echo "master_url = \"${master%/}\""
        echo 'vcgencmd = ""   # no VideoCore in a VM'
        if [ -n "$cores" ]; then
            echo "cores = $cores"
            echo 'oversubscribe = true   # the VM may have fewer CPUs than the node it stands for'
        fi
        echo 'work_dir = "/var/tmp"'
        echo 'log_level = "info"'
    } > "$root/etc/rpiaas-agent/agent.toml"
    cat > "$root/sbin/init" <<'INIT'
#!/bin/busybox sh
# rpiaas agent root: start the node's agent, as the systemd unit
# agent/systemd/rpiaas-agent.service does on a Raspberry Pi OS node (this root
# has no systemd): restarted when it fails (Restart=on-failure, RestartSec=2),
# here at most 3 runs; then, or when it exits cleanly, the VM powers off.
bb=/bin/busybox
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root PYTHONUNBUFFERED=1 LANG=C.UTF-8
off() { $bb sync; $bb poweroff -f; $bb sleep 10; }
fail() { echo "rpiaas-node: FAILED: $*"; off; }
$bb mount -t proc proc /proc || fail "mount /proc"
$bb mount -t sysfs sysfs /sys || fail "mount /sys"
# the initramfs moves its devtmpfs here; mount one if it did not
[ -c /dev/null ] || $bb mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
$bb mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp || fail "mount /tmp"
$bb mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run || fail "mount /run"
$bb ip link set lo up || fail "ip link set lo up"
[ -r /etc/rpiaas-agent/agent.toml ] || fail "no /etc/rpiaas-agent/agent.toml"
name=$($bb sed -n 's/^name = "\(.*\)"$/\1/p' /etc/rpiaas-agent/agent.toml)
[ -x /usr/bin/python3.11 ] || fail "no /usr/bin/python3.11"
runs=0
while :; do
    runs=$((runs + 1))
    echo "rpiaas-node: $name starting the agent at $($bb cut -d' ' -f1 /proc/uptime) s"
    /usr/bin/python3.11 -m rpiaas_agent --config /etc/rpiaas-agent/agent.toml
    code=$?
    if [ "$code" = 0 ]; then
        echo "rpiaas-node: $name: the agent stopped; powering off"
        off
    fi
    if [ "$runs" -ge 3 ]; then
        fail "the agent exited with $code, $runs times"
    fi
    echo "rpiaas-node: $name: the agent exited with $code; restarting it in 2 s"
    $bb sleep 2
done
INIT
    chmod 755 "$root/sbin/init"
    echo "$name: $root (agent)"
done < "$stage/nodes"
