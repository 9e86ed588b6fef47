"""``python -m deepfake_lib.cli``: the ``deepfake-lib`` command."""

import sys

from deepfake_lib.cli.main import main

sys.exit(main())
