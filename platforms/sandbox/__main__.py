"""``python -m platforms.sandbox`` — see ``platforms.sandbox.cli``."""

import sys

from .cli import main

sys.exit(main())
