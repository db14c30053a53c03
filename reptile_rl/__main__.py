"""``python -m reptile_rl ...``: the ``reptile-rl`` command."""

import sys

from reptile_rl.cli import main

sys.exit(main())
