"""``python -m devicelab`` is the ``devicelab`` command."""

import sys

from devicelab.cli import main

sys.exit(main())
