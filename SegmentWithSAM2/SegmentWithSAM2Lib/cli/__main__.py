"""``python -m SegmentWithSAM2Lib.cli``: the same as the ``segment-with-sam2`` command."""

import sys

from . import main

sys.exit(main())
