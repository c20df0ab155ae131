"""Fault injection for the crash-safety tests: `PROTOKIT_CRASH_AT=<point>` makes a run SIGKILL itself there.

The points are the moments a real crash hurts most: `compile` (a forked worker running), `staging` (half
the new files written beside the old ones), `renaming` (half of them renamed into place), `swap` (the old
tree moved aside, the new one not yet in). Unset, this costs one dictionary lookup per point.
"""

from __future__ import annotations

import os
import signal

_VARIABLE = "PROTOKIT_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
