"""This service process among many: its name in the leases it holds, and the lease arithmetic they share.

A lease is a row's `lease_holder` and `lease_expires_at`: the holder renews it while it works (Heartbeat) and
checks on every write that it still holds it; once it expires, another process may take the work over. A process
killed with -9 therefore holds its work at most one lease time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from api.models import utc_now

log = logging.getLogger(__name__)
_NAME: tuple[int, str] | None = None  # (pid, name): a forked child names itself anew


def worker_id() -> str:
    """host:pid:random, unique among the processes on one database (a restarted process is a new worker)."""
    global _NAME
    if _NAME is None or _NAME[0] != os.getpid():
        _NAME = (os.getpid(), f"{socket.gethostname()[:50]}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    return _NAME[1]


def lease_until(lease_s: float, now: datetime | None = None) -> datetime:
    return (now or utc_now()) + timedelta(seconds=lease_s)


class Heartbeat:
    """Renews a lease every third of its time in a thread, while the holder works; `lost` once a renewal finds the
    lease no longer the holder's (it expired and another process took the work over)."""

    def __init__(self, renew: Callable[[], bool], lease_s: float, name: str):
        self._renew, self._every_s = renew, lease_s / 3
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{name}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                if not self._renew():
                    self.lost = True
                    return
            except Exception:  # the database away for a moment: the next beat tries again before the lease ends
                log.warning("renewing a lease failed; trying again in %.1f s", self._every_s, exc_info=True)
