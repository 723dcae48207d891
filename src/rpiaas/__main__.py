"""``python -m rpiaas`` is the ``rpiaas`` command."""

import sys

from .cli import main

sys.exit(main())
