"""``python -m agent`` runs the ``factagent`` command line."""

import sys

from agent.cli import main

sys.exit(main())
