"""`python -m bothunt` is the same as the `bothunt` command."""

import sys

from bothunt.cli import main

sys.exit(main())
