"""Where the `tfrl` command under test lives."""

import os
import sys

TFRL = os.path.join(os.path.dirname(sys.executable), "tfrl")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
