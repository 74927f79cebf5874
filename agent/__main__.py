"""``python -m agent`` runs the ``factagent`` command line."""

import sys

from agent.cli import main

if __name__ == "__main__":  # guarded: training workers are spawned and re-import the main module
    sys.exit(main())
