"""`python -m training` works like `wgan-train`."""

import sys

from training.cli import main

sys.exit(main())
