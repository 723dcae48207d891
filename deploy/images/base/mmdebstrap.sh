#!/usr/bin/env bash
# The rpiaas base image's root file system, as a tar on stdout: a minimal Debian with the
# packages of ./packages, from Debian's archive only.  scripts/build-images.sh imports it.
# usage: mmdebstrap.sh ARCH SUITE MIRROR
set -euo pipefail
arch=$1 suite=$2 mirror=$3
here=$(cd "$(dirname "$0")" && pwd)
include=$(grep -v '^\s*#' "$here/packages" | grep -v '^\s*$' | paste -sd, -)
# no documentation, manual pages or translations; mmdebstrap removes apt's lists itself
exec mmdebstrap --quiet --variant=minbase --architectures="$arch" --include="$include" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --aptopt='Acquire::Languages "none"' \
    "$suite" - "deb $mirror $suite main" "deb $mirror $suite-updates main"
