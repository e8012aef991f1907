import sys

from modelrollout.cli.main import main

sys.exit(main())
