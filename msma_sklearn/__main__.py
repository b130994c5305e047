"""``python -m msma_sklearn`` is the ``msma`` command."""

import sys

from .cli import main

sys.exit(main())
