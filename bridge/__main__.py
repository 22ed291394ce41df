"""Command line: ``orangetv2mqtt run|login|devices|send|check-config|simulate|demo``.

Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage, 3 login required.
"""

from __future__ import annotations

import sys

from bridge.cli import main

if __name__ == "__main__":
    sys.exit(main())
