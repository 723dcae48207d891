"""``python -m rpiaas_agent``: the same as the ``rpiaas-agent`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
