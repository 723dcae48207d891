#!/bin/sh
# make-minimal-root.sh: a minimal NFS root per node, for booting virtual Pis in tests.
#
#   scripts/netboot/vm/make-minimal-root.sh --render DIR --busybox FILE --master URL
#                                   [--boot-secret-file FILE]
#
# (also run as `prepare-nfsroot.sh --minimal ...`.)  DIR is the output of
# `rpiaas netboot render`; for each node of its nodes.json, the node's root
# path gets
#   /bin/busybox            FILE, a static busybox of the node's architecture
#                           (prepare.sh prints the arm64 one's path);
#   /etc/rpiaas/node        the node's name;
#   /etc/rpiaas/master      URL, the master's base URL (http://10.0.0.1:8080);
#   /etc/rpiaas/boot-token  with --boot-secret-file: the node's boot token,
#                           HMAC-SHA256(secret, node name) in hex, which the
#                           master with the same boot_secret_file accepts;
#   /sbin/init              which reports the boot to the master (POST
#                           URL/api/v1/nodes/<name>/booted {"uptime_s": ...},
#                           the seconds since its kernel started), writes the
#                           marker /rpiaas-booted into its own root (its name,
#                           host name, address, uptime, the master's answer
#                           and the kernel's boot_id) and powers off.
# A root path that exists is emptied first.  Run as root (the NFS server
# serves the files as they are owned).
set -eu

die() { echo "make-minimal-root: $*" >&2; exit 1; }
render="" busybox="" master="" secret_file=""
while [ $# -gt 0 ]; do
    case "$1" in
        --render) render=$2; shift 2 ;;
        --busybox) busybox=$2; shift 2 ;;
        --master) master=$2; shift 2 ;;
        --boot-secret-file) secret_file=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[ -n "$render" ] || die "--render DIR is required"
[ -f "$render/nodes.json" ] || die "$render: not a rendered netboot directory (no nodes.json)"
[ -n "$busybox" ] && [ -f "$busybox" ] || die "--busybox FILE: a static busybox is required"
case "$master" in http://*) ;; *) die "--master URL: expected http://host:port, got '$master'" ;; esac
[ -z "$secret_file" ] || [ -r "$secret_file" ] || die "cannot read $secret_file"
command -v python3 >/dev/null || die "python3 is needed to read nodes.json"

# one line per node: name root_path token (or -)
python3 - "$render/nodes.json" "$secret_file" <<'PY' | while read -r name root token; do
import hashlib, hmac, json, sys
secret = open(sys.argv[2]).read().strip() if sys.argv[2] else ""
for n in json.load(open(sys.argv[1]))["nodes"]:
    token = hmac.new(secret.encode(), n["name"].encode(), hashlib.sha256).hexdigest() if secret else "-"
    print(n["name"], n["root_path"], token)
PY
    echo "$name: $root (minimal)"
    case "$root" in /?*) ;; *) die "$name: root path '$root' is not absolute" ;; esac
    mkdir -p "$root"
    find "$root" -mindepth 1 -delete
    mkdir -p "$root/bin" "$root/sbin" "$root/etc/rpiaas" "$root/proc" "$root/sys" "$root/dev" \
             "$root/tmp"
    install -m 755 "$busybox" "$root/bin/busybox"
    echo "$name" > "$root/etc/rpiaas/node"
    echo "${master%/}" > "$root/etc/rpiaas/master"
    if [ "$token" != - ]; then
        (umask 077 && echo "$token" > "$root/etc/rpiaas/boot-token")
    fi
    cat > "$root/sbin/init" <<'INIT'
#!/bin/busybox sh
# rpiaas minimal root: report the boot to the master, leave a marker, power off.
bb=/bin/busybox
$bb mount -t proc proc /proc
uptime_s=$($bb cut -d' ' -f1 /proc/uptime)
name=$($bb cat /etc/rpiaas/node)
master=$($bb cat /etc/rpiaas/master)
host=$($bb hostname)
address=$($bb ip -4 addr show dev eth0 | $bb sed -n 's/.*inet \([0-9.]*\).*/\1/p' | $bb head -n 1)
echo "rpiaas-node: $name ($host, $address) up after $uptime_s s; reporting to $master"
set -- --header "Content-Type: application/json"
if [ -r /etc/rpiaas/boot-token ]; then
    set -- "$@" --header "Authorization: Bearer $($bb cat /etc/rpiaas/boot-token)"
fi
# (wget's own -T crashes busybox 1.35's static build; timeout does the same)
answer=$($bb timeout 10 $bb wget -q -O - "$@" --post-data "{\"uptime_s\": $uptime_s}" \
         "$master/api/v1/nodes/$name/booted" 2>&1) && report=ok || report=failed
echo "rpiaas-node: boot report $report: $answer"
# truncated, not replaced: a file removed behind the NFS server's back may live on in its cache
printf 'name=%s\nhostname=%s\naddress=%s\nuptime_s=%s\nreport=%s\nboot_id=%s\n' \
    "$name" "$host" "$address" "$uptime_s" "$report" "$($bb cat /proc/sys/kernel/random/boot_id)" \
    > /rpiaas-booted
$bb sync
echo "rpiaas-node: powering off"
$bb poweroff -f
INIT
    chmod 755 "$root/sbin/init"
done
