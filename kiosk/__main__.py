"""``python -m kiosk`` is the same as the ``kiosk`` command (its first step included)."""

import sys

from kiosk.cli.start import main

sys.exit(main())
