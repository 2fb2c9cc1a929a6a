"""The serial link both the board and the plate drivers speak over, against the virtual devices of the simulator
on real pseudo-terminals and in-process `sim://` ports."""

from __future__ import annotations

import itertools
import time

import pytest

from core.errors import DeviceDisconnected, ProtocolError
from device import plate_protocol as proto
from device.board import MotorBoard
from device.link import SerialLink
from device.plate import PressurePlate
from simulator.board import VirtualBoard
from simulator.plate import VirtualPlate
from simulator.ports import InProcessLink, Link, PtyLink
from simulator.rig import DEMO_RIG_SERIAL, rig_geometry
from simulator.scene import Scene
from simulator.subjects import template_subject

pytestmark = pytest.mark.timeout(60)

TIMEOUT_S = 0.5  # driver command timeout in these tests: tries wait 0.5, 1, 2 s
SLACK = 10  # wall-time bounds allow ten times the typical time: other test runs may share the 2 cores
PLATE_SERIAL = "PP-TEST-0002"
_names = itertools.count()


class DamagingBoard(VirtualBoard):
    """The virtual board on a cable that flips one bit of each of its next `ok` lines, once told how many."""

    replies_to_damage = 0

    def emit(self, data: bytes) -> None:
        if self.replies_to_damage and data.startswith(b"ok "):
            self.replies_to_damage -= 1
            data = b"O" + data[1:]  # 'o' -> 'O'
        super().emit(data)


class DamagingPlate(VirtualPlate):
    """The virtual plate on a cable that flips one bit of its first IDENTITY reply."""

    identity_damaged = False

    def emit(self, data: bytes) -> None:
        if data[2] == proto.MSG_IDENTITY and not self.identity_damaged:
            self.identity_damaged = True
            data = data[:20] + bytes([data[20] ^ 0x01]) + data[21:]  # a bit of the payload
        super().emit(data)


@pytest.fixture(scope="module")
def scene():
    subject = template_subject()
    return Scene(rig_geometry(DEMO_RIG_SERIAL), subject.left, subject.right, subject.body_weight_kg, seed=3)


@pytest.fixture
def rig(scene, tmp_path, request):
    """Factory: a virtual device of `kind` on a link (pty or in-process) and its driver; closed after the test,
    driver first."""

    def make(kind: str, pty: bool = False):
        if kind == "board":
            device = DamagingBoard(scene, DEMO_RIG_SERIAL, time_scale=0.0)
        else:
            device = DamagingPlate(scene, PLATE_SERIAL, seed=11)
        name = f"{kind}{next(_names)}"
        link: Link = PtyLink(device, tmp_path / name) if pty else InProcessLink(device, name)
        driver = (MotorBoard if kind == "board" else PressurePlate)(link.url, command_timeout_s=TIMEOUT_S)
        for part in (device, link, driver):
            request.addfinalizer(part.close)  # run last to first
        return device, link, driver

    return make


def test_board_and_plate_speak_over_the_same_link(rig):
    _, _, board = rig("board")
    _, _, plate = rig("plate")
    board.connect()
    plate.connect()
    assert type(board.link) is type(plate.link) is SerialLink
    assert (board.link.device, plate.link.device) == ("board", "plate")
    assert board.link.stats.commands == 2  # sync, identity
    assert plate.link.stats.commands == 3  # identity, calibration, stop


@pytest.mark.parametrize("kind", ["board", "plate"])
def test_board_and_plate_lose_their_port_and_fail_to_reconnect_alike(rig, kind):
    _, link, driver = rig(kind, pty=True)
    driver.connect()
    link.disconnect(None)  # the USB cable pulled for good
    with pytest.raises(DeviceDisconnected, match="lost the connection .* then reconnect"):
        driver.start() if kind == "plate" else driver.status()
    started = time.monotonic()
    with pytest.raises(DeviceDisconnected, match=rf"^{kind}: did not come back on .* within 1 s .*USB cable"):
        driver.reconnect(window_s=1.0)
    elapsed_s = time.monotonic() - started
    assert 1.0 <= elapsed_s < SLACK * 1.0  # tried for the whole window, then gave up


def test_a_damaged_board_reply_is_sent_again_at_once_and_runs_once(rig):
    board, _, driver = rig("board")
    driver.connect()
    driver.home()
    executed = board.counters.executed
    board.replies_to_damage = 1
    assert driver.move_to(30.0) == pytest.approx(30.0, abs=0.02)
    stats = driver.stats
    assert (stats.checksum_errors, stats.resends, stats.retries) == (1, 1, 0)  # no timeout waited out
    assert board.counters.replayed == 1  # the board answered the resent line from memory...
    assert board.counters.executed == executed + 1  # ...so the arm moved once


def test_a_damaged_plate_reply_is_sent_again_after_the_timeout(rig):
    """A damaged plate frame is most likely a matrix, so it is no reason to resend: the timeout repairs a reply."""
    plate, _, driver = rig("plate")
    assert driver.connect().serial == PLATE_SERIAL
    assert plate.identity_damaged
    assert driver.stats.crc_errors == 1
    assert (driver.link.stats.retries, driver.link.stats.resends) == (1, 0)


def test_a_line_that_damages_everything_is_a_protocol_error(rig):
    board, _, driver = rig("board")
    driver.connect()
    board.replies_to_damage = 10**6
    with pytest.raises(ProtocolError, match=r"21 damaged lines in a row .* during 'M114'.*check the USB cable"):
        driver.status()
    assert driver.stats.retries == 0
