"""``python -m components.lifecycle`` is the same program as the ``devpi-lifecycle`` script."""

import sys

from components.lifecycle.cli import main

sys.exit(main())
