"""``python -m unblur`` (what ``torchrun ... -m unblur train`` runs)."""

import sys

from unblur.cli import main

sys.exit(main())
