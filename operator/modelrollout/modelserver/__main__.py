"""``python -m modelrollout.modelserver``: the ``serve-model`` command on its own."""

import sys

from modelrollout.cli.serve_model import main

sys.exit(main())
