"""``python -m activator``: the daemon, as the ``activator`` command."""

import sys

from activator.cli.daemon import main

sys.exit(main())
