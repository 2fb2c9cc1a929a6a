"""`python -m simulator serve ...`: see simulator.serve."""

import sys

from simulator.serve import main

sys.exit(main())
