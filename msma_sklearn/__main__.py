"""``python -m msma_sklearn`` is the ``msma`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
