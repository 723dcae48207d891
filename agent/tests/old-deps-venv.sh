#!/usr/bin/env bash
# Make a Python environment with the agent's oldest supported libraries, those
# of Debian bookworm (the base of Raspberry Pi OS bookworm): python3-aiohttp
# 3.8.4 and python3-psutil 5.9.4, plus what the agent's tests import, and this
# checkout's agent (editable, without dependencies).  agent/tests/test_compat.py
# runs the agent's whole test suite with it:
#
#   bash agent/tests/old-deps-venv.sh /tmp/oldvenv
#   RPIAAS_TEST_OLD_DEPS_PYTHON=/tmp/oldvenv/bin/python \
#       .venv/bin/python -m pytest -q agent/tests/test_compat.py
#
# usage: old-deps-venv.sh [--debian] DIR
#   DIR       a new venv of python3.11 ($PYTHON to change) with aiohttp 3.8.4 and
#             psutil 5.9.4 from PyPI, and aiohttp's own dependencies at the
#             versions bookworm ships
#   --debian  on Debian bookworm: a venv of /usr/bin/python3 with
#             --system-site-packages over apt's python3-aiohttp and
#             python3-psutil (installed first if missing, as root), as a Pi runs
#             the agent with scripts/netboot/prepare-nfsroot.sh
set -euo pipefail

debian=0
if [ "${1:-}" = --debian ]; then
    debian=1
    shift
fi
dest=${1:?usage: old-deps-venv.sh [--debian] DIR}
agent=$(cd "$(dirname "$0")/.." && pwd)
# what the agent's tests import besides the agent and its two libraries
tests=(pytest hypothesis requests schemathesis openapi-spec-validator)

if [ "$debian" = 1 ]; then
    if ! /usr/bin/python3 -c 'import aiohttp, psutil, venv, ensurepip' 2>/dev/null; then
        apt-get install -y python3-aiohttp python3-psutil python3-venv
    fi
    /usr/bin/python3 -m venv --system-site-packages "$dest"
    "$dest/bin/pip" install -q "${tests[@]}"
else
    "${PYTHON:-python3.11}" -m venv "$dest"
    "$dest/bin/pip" install -q aiohttp==3.8.4 psutil==5.9.4 \
        yarl==1.8.2 multidict==6.0.4 frozenlist==1.3.3 aiosignal==1.3.1 \
        async-timeout==4.0.2 attrs==22.2.0 charset-normalizer==3.0.1 "${tests[@]}"
fi
"$dest/bin/pip" install -q --no-deps -e "$agent"
# the test libraries must not have pulled in newer ones
"$dest/bin/python" - <<'EOF'
import aiohttp, psutil
found = (aiohttp.__version__, psutil.__version__)
assert found == ("3.8.4", "5.9.4"), f"aiohttp {found[0]}, psutil {found[1]}: not bookworm's"
print(f"aiohttp {found[0]} ({aiohttp.__file__}), psutil {found[1]}")
EOF
