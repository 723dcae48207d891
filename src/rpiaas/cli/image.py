"""``rpiaas image push IMAGE``: put a local container image into the testbed's registry.

The image is copied from this machine's container storage (podman's, buildah's)
with ``skopeo``; the registry is the one the testbed in ``--dir`` runs
(``rpiaas testbed up --local N --registry``, or ``rpiaas registry serve``), or
``--registry HOST:PORT`` with that directory's push credential.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add ``image`` to the ``rpiaas`` subparsers ``sub``."""
    from ..testbed.plan import DEFAULT_DIR

    im = sub.add_parser("image", help="container images and the testbed's registry")
    cmds = im.add_subparsers(dest="image_command", required=True, metavar="COMMAND")
    push = cmds.add_parser("push", help="copy a local image (podman's storage) into the testbed's registry, "
                           "where the nodes pull it")
    push.add_argument("image", metavar="IMAGE", help="a local image, name[:tag] (`podman images` lists them)")
    push.add_argument("--registry", metavar="HOST:PORT",
                      help="the registry's push address (default: the one the testbed in --dir runs)")
    push.add_argument("--auth-file", metavar="FILE",
                      help="the push credential (default: DIR/registry/push-auth.json)")
    push.add_argument("--dir", default=DEFAULT_DIR,
                      help=f"the testbed's directory (default {DEFAULT_DIR})")
    push.add_argument("--json", action="store_true", help="print what was pushed as JSON")
    im.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rpiaas image COMMAND``; the exit code."""
    from ..testbed.plan import TestbedError
    from ..testbed.registry import REGISTRY_DIR, push_image, registry_info

    root = Path(args.dir).absolute()
    try:
        info = registry_info(root)
        push = args.registry or (info or {}).get("push_address")
        if push is None:
            print(f"error: no registry in {root} (start one with `rpiaas testbed up --local N --registry` "
                  "or `rpiaas registry serve`, or give --registry HOST:PORT)", file=sys.stderr)
            return 2
        auth = args.auth_file or (info or {}).get("auth_file") or str(root / REGISTRY_DIR / "push-auth.json")
        result = push_image(args.image, push, auth)
    except TestbedError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(f"pushed {result.source} to {result.reference} in {result.seconds:.2f} s; "
              f"a container task names it `image: {result.image}`")
    return 0
