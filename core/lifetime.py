"""A child process that must not outlive the process that started it, however that one ends (kill -9 included):
a simulated rig started for a scan, the rig agent `footfit demo` starts beside the service."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

PARENT_CHECK_S = 0.5  # how often a child looks whether its parent is still there


def when_orphaned(act: Callable[[], None], check_s: float = PARENT_CHECK_S) -> None:
    """Call act() (once, in a daemon thread) when this process's parent is gone: the process is then given to
    another parent, so its parent id changes."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(check_s)
        act()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
