"""`python -m cmteb.cli`."""

import sys

from cmteb.cli import main

sys.exit(main())
