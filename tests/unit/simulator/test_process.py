"""A simulated rig in its child process dies with the process that started it, however that one ends: a service
killed with -9 leaves no rig listening on its ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

STARTS = textwrap.dedent("""
    import sys, time
    from simulator.process import SimulatorProcess
    rig = SimulatorProcess("FF-TEST-0001", seed=3)
    print(rig.proc.pid, flush=True)
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_a_simulated_rig_stops_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", STARTS], stdout=subprocess.PIPE, text=True)
    try:
        rig_pid = int(parent.stdout.readline())
        assert _alive(rig_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 20
        while _alive(rig_pid):
            assert time.monotonic() < deadline, "the rig outlived its parent by 20 s"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()
