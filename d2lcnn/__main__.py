"""``python -m d2lcnn``: the command-line runner (see ``d2lcnn.cli``)."""

import sys

from .cli import main

sys.exit(main())
