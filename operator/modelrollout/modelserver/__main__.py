"""``python -m modelrollout.modelserver``: the ``serve-model`` command on its own."""

import sys

from modelrollout.modelserver.command import main

sys.exit(main())
