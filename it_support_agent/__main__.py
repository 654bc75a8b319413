"""`python -m it_support_agent` runs the command line."""

import sys

from it_support_agent.graph.app.cli import main

sys.exit(main())
