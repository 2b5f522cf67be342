"""``python -m flovyn_nb.cli``: the same as the ``flovyn-nb`` command."""

import sys

from flovyn_nb.cli import main

sys.exit(main())
