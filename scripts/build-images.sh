#!/usr/bin/env bash
# Build rpiaas's container images from Debian's packages and this checkout:
#   rpiaas-base    a minimal Debian (mmdebstrap) with Python, python3-aiohttp, python3-psutil
#   rpiaas-master  rpiaas[live] in a venv: `rpiaas master`, `rpiaas run --live`, ...
#   rpiaas-agent   rpiaas-agent on Debian's aiohttp and psutil
# Each image is tagged with a hash of what it is built from (the recipe, and the sources for
# the master and the agent); an image whose tag exists is not built again.
#
# usage: scripts/build-images.sh [--arch amd64|arm64] [--suite bookworm] [--mirror URL]
#                                [--latest] [--print-tags]
#   --arch        the images' architecture (default: this machine's); another one needs
#                 binfmt emulation (qemu-user-static) or a host of that architecture
#   --latest      also tag the images :latest (what deploy/compose/compose.yaml starts)
#   --print-tags  print the three image references and build nothing
# environment: PODMAN (podman), PYTHON (a Python with pip and setuptools >= 77, to build
#   the wheels: default .venv/bin/python, else python3), RPIAAS_IMAGE_CACHE (the master's
#   dependencies as wheels, and builds.log: a line per image built, with its build time and
#   size; default /var/tmp/rpiaas-images)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGES="$ROOT/deploy/images"
PODMAN=${PODMAN:-podman}
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
CACHE=${RPIAAS_IMAGE_CACHE:-/var/tmp/rpiaas-images}
LOG=$CACHE/builds.log
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
LATEST=0
PRINT=0
die() { echo "build-images: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=${2:?--arch needs a value}; shift 2 ;;
        --suite) SUITE=${2:?--suite needs a value}; shift 2 ;;
        --mirror) MIRROR=${2:?--mirror needs a value}; shift 2 ;;
        --latest) LATEST=1; shift ;;
        --print-tags) PRINT=1; shift ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
case "$ARCH" in amd64|arm64) ;; *) die "--arch: amd64 or arm64, not $ARCH" ;; esac

# hashes: of the files given (their paths and contents), and of the settings
hash_files() {
    (cd "$ROOT" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum) | sha256sum | cut -c1-12
}
settings="$ARCH $SUITE $MIRROR"
base_hash=$( { echo "$settings"; hash_files deploy/images/base; } | sha256sum | cut -c1-12)
src_hash=$(hash_files pyproject.toml README.md src/rpiaas agent/pyproject.toml agent/README.md agent/rpiaas_agent)
master_hash=$( { echo "$base_hash $src_hash"; hash_files deploy/images/master scripts/build-images.sh; } \
    | sha256sum | cut -c1-12)
agent_hash=$( { echo "$base_hash $src_hash"; hash_files deploy/images/agent scripts/build-images.sh; } \
    | sha256sum | cut -c1-12)
BASE=localhost/rpiaas-base:$base_hash
MASTER=localhost/rpiaas-master:$master_hash
AGENT=localhost/rpiaas-agent:$agent_hash
if [ "$PRINT" = 1 ]; then printf '%s\n' "$BASE" "$MASTER" "$AGENT"; exit 0; fi

# podman in this kind of sandbox: runc (cgroups v1), no raising of resource limits; the
# builds need no network (every wheel is in the context)
BUILD=("$PODMAN" build --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
       --network none --platform "linux/$ARCH" --layers)
mkdir -p "$CACHE"
now() { date +%s.%N; }
record() {  # IMAGE START: one line in the log and on stderr
    local size; size=$("$PODMAN" image inspect --format '{{.Size}}' "$1")
    awk -v ref="$1" -v s="$(now)" -v t0="$2" -v b="$size" \
        'BEGIN { printf "%s built_s=%.1f size_mb=%.1f\n", ref, s - t0, b / 1048576 }' | tee -a "$LOG" >&2
}
exists() { "$PODMAN" image exists "$1"; }

if exists "$BASE"; then
    echo "build-images: $BASE (cached)" >&2
else
    command -v mmdebstrap >/dev/null || die "needs mmdebstrap (apt-get install mmdebstrap)"
    start=$(now)
    # to a file first: a half-made root (a mirror that fails mid-way) is never imported
    tarball="$CACHE/base-$base_hash.tar"
    trap 'rm -f "$tarball"' EXIT
    "$IMAGES/base/mmdebstrap.sh" "$ARCH" "$SUITE" "$MIRROR" >"$tarball" \
        || die "mmdebstrap failed (is $MIRROR reachable?); the base is not built"
    "$PODMAN" import --quiet --arch "$ARCH" --change 'CMD ["/bin/bash"]' "$tarball" "$BASE" >/dev/null
    rm -f "$tarball"
    record "$BASE" "$start"
fi

if exists "$MASTER" && exists "$AGENT"; then
    echo "build-images: $MASTER $AGENT (cached)" >&2
else
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    # the wheels are pure Python: built here once, for any architecture
    for pkg in . agent; do
        mkdir -p "$ctx/src/$pkg"
        for f in pyproject.toml README.md src rpiaas_agent; do
            if [ -e "$ROOT/$pkg/$f" ]; then cp -r "$ROOT/$pkg/$f" "$ctx/src/$pkg/"; fi
        done
        find "$ctx/src/$pkg" -name __pycache__ -prune -exec rm -rf {} +
        "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation --disable-pip-version-check \
            -w "$ctx/wheels" "$ctx/src/$pkg" >"$ctx/pip.log" 2>&1 || { cat "$ctx/pip.log" >&2; exit 1; }
    done
    # the master's requirements, from its wheel's metadata: rpiaas's and its `live` extra's
    "$PYTHON" - "$ctx/wheels" >"$ctx/wheels/requirements.txt" <<'PY'
import sys, zipfile
from pathlib import Path
wheel = next(Path(sys.argv[1]).glob("rpiaas-*.whl"))
with zipfile.ZipFile(wheel) as z:
    meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
for line in meta.splitlines():
    if line.startswith("Requires-Dist: "):
        req, _, marker = line[len("Requires-Dist: "):].partition(";")
        if not marker.strip() or marker.replace(" ", "").replace("'", '"') == 'extra=="live"':
            print(req.strip())
PY
    # the master's dependencies as wheels for the image's Python and architecture, fetched
    # here with this machine's pip settings (the images are built without a network), and
    # kept in $CACHE for the next build
    pyver=$("$PODMAN" run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        --network none "$BASE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    case "$ARCH" in amd64) machine=x86_64 ;; arm64) machine=aarch64 ;; esac
    deps="$CACHE/wheels-$ARCH-py$pyver-$(sha256sum "$ctx/wheels/requirements.txt" | cut -c1-12)"
    if [ ! -e "$deps/.done" ]; then
        rm -rf "$deps"
        "$PYTHON" -m pip download -q --disable-pip-version-check --only-binary=:all: \
            --implementation cp --python-version "$pyver" --platform "manylinux2014_$machine" \
            --platform "manylinux_2_17_$machine" --platform "manylinux_2_28_$machine" \
            -r "$ctx/wheels/requirements.txt" -d "$deps" >"$ctx/pip.log" 2>&1 || { cat "$ctx/pip.log" >&2; exit 1; }
        touch "$deps/.done"
    fi
    cp -r "$deps" "$ctx/wheels/deps"
    for name in master agent; do
        ref=$MASTER; [ "$name" = agent ] && ref=$AGENT
        if exists "$ref"; then echo "build-images: $ref (cached)" >&2; continue; fi
        cp "$IMAGES/$name/Containerfile" "$ctx/Containerfile.$name"
        start=$(now)
        "${BUILD[@]}" --quiet --build-arg "BASE=$BASE" -f "$ctx/Containerfile.$name" -t "$ref" "$ctx" >/dev/null
        record "$ref" "$start"
    done
fi
if [ "$LATEST" = 1 ]; then
    for ref in "$BASE" "$MASTER" "$AGENT"; do "$PODMAN" tag "$ref" "${ref%:*}:latest"; done
fi
printf '%s\n' "$BASE" "$MASTER" "$AGENT"
