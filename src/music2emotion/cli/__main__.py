"""``python -m music2emotion.cli``: the ``music2emotion`` command."""

import sys

from . import main

sys.exit(main())
