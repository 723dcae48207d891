"""``python -m rpiaas.cli`` is the ``rpiaas`` command (as ``python -m rpiaas`` is)."""

import sys

from . import main

sys.exit(main())
