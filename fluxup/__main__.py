"""``python -m fluxup``: the same as the ``fluxup`` console script."""

import sys

from fluxup.cli import main

sys.exit(main())
