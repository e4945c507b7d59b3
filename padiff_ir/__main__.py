"""``python -m padiff_ir``: the ``padiff-ir`` command line."""

from __future__ import annotations

import sys

from padiff_ir.cli import main

if __name__ == "__main__":
    sys.exit(main())
