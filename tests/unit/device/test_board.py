"""The motor board driver against the virtual board, through real pseudo-terminals and in-process ports."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest
import serial

from core.errors import DeviceDisconnected, DeviceNotFound, DeviceTimeout, WrongDevice
from core.mesh import Mesh
from device import board_protocol as bp
from device.board import BoardRefused, MotorBoard
from simulator.board import MICROSTEP_DEG, VirtualBoard
from simulator.ports import InProcessLink, PtyLink, VirtualDevice
from simulator.rig import DEMO_RIG_SERIAL, rig_geometry
from simulator.scene import Scene

pytestmark = pytest.mark.timeout(60)

TIMEOUT_S = 0.5  # driver command timeout in these tests: tries wait 0.5, 1, 2 s
_names = itertools.count()


def _block_foot() -> Mesh:
    vertices = np.array([[0, 0, 0], [250, 0, 0], [0, 95, 0], [120, 45, 70]], dtype=float)
    return Mesh(vertices, np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]], dtype=np.int32))


@pytest.fixture
def scene() -> Scene:
    return Scene(rig_geometry(DEMO_RIG_SERIAL), _block_foot(), _block_foot(), body_weight_kg=75.0, seed=3)


@pytest.fixture
def make_board(scene):
    boards = []

    def make(board_class=VirtualBoard, **kwargs) -> VirtualBoard:
        kwargs.setdefault("time_scale", 0.0)
        board = board_class(scene, DEMO_RIG_SERIAL, **kwargs)
        boards.append(board)
        return board

    yield make
    for board in boards:
        board.close()


@pytest.fixture
def links():
    made = []
    yield made
    for link in made:
        link.close()


@pytest.fixture
def pty(tmp_path, links):
    def open_link(device: VirtualDevice, corrupt_rate: float = 0.0, seed: int = 0) -> PtyLink:
        link = PtyLink(device, tmp_path / f"board{next(_names)}", corrupt_rate, seed)
        links.append(link)
        return link

    return open_link


@pytest.fixture
def sim(links):
    def open_link(device: VirtualDevice) -> InProcessLink:
        link = InProcessLink(device, f"board{next(_names)}")
        links.append(link)
        return link

    return open_link


@pytest.fixture
def drivers():
    made = []

    def make(url: str, **kwargs) -> MotorBoard:
        kwargs.setdefault("command_timeout_s", TIMEOUT_S)
        driver = MotorBoard(url, **kwargs)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()


def _read_message(port: serial.SerialBase, deadline_s: float = 2.0) -> bp.BoardMessage:
    port.timeout = deadline_s
    line = port.read_until(b"\n")
    body = bp.unframe(line.rstrip(b"\n"))
    assert body is not None, f"damaged or missing board line {line!r}"
    return bp.parse_board_message(body)


# --- the wire format ---


def test_every_single_bit_flip_of_a_line_is_detected():
    line = bp.Command(7, bp.MOVE, {"X": "90.000"}).line().rstrip(b"\n")
    assert bp.unframe(line) == "N7 G1 X90.000"
    for position in range(len(line)):
        for bit in range(8):
            damaged = bytearray(line)
            damaged[position] ^= 1 << bit
            assert bp.unframe(bytes(damaged)) is None, (position, bit)


def test_board_messages_round_trip():
    record = bp.TriggerRecord(41, -12.35, (False, True), 98765)
    assert bp.parse_board_message(bp.unframe(bp.frame(record.body())[:-1])) == record
    status = bp.BoardStatus(12.5, True, (True, False), False, 9)
    reply = bp.parse_board_message(bp.Reply(3, True, status.fields()).body())
    assert bp.BoardStatus.from_fields(reply.fields) == status
    refused = bp.parse_board_message(bp.Reply(4, False, {}, "not-homed", "home first").body())
    assert (refused.ok, refused.code, refused.message) == (False, "not-homed", "home first")


# --- the driver against the virtual board ---


def test_handshake_reports_the_boards_identity(make_board, pty, drivers):
    board = make_board(firmware_version="1.5.0")
    driver = drivers(pty(board).url)
    identity = driver.connect()
    assert identity == bp.BoardIdentity("footfit-arm", "1.5.0", 1, DEMO_RIG_SERIAL)
    assert driver.stats.retries == driver.stats.checksum_errors == 0


def test_home_then_move_settles_on_the_encoder_reading(make_board, scene, pty, drivers):
    board = make_board()
    with drivers(pty(board).url) as driver:
        with pytest.raises(BoardRefused, match="not homed") as refused:
            driver.move_to(10.0)
        assert refused.value.code == "not-homed"
        assert driver.home() == 0.0
        for target in (37.3, -120.0, 271.05):
            settled = driver.move_to(target)
            assert abs(settled - target) <= MICROSTEP_DEG / 2 + 0.005
            status = driver.status()
            assert status.angle_deg == settled and status.homed and not status.moving
            assert scene.snapshot().arm_angle_deg == pytest.approx(settled)
        with pytest.raises(ValueError, match="outside the arm's range"):
            driver.move_to(400.0)


def test_moves_take_their_trapezoid_time_and_busy_keeps_the_driver_waiting(make_board, sim, drivers):
    board = make_board(time_scale=1.0)
    with drivers(sim(board).url) as driver:
        driver.home()
        driver.set_motion(speed_dps=90.0, accel_dps2=360.0)
        started = time.monotonic()
        assert driver.move_to(90.0) == pytest.approx(90.0)
        elapsed_s = time.monotonic() - started
        # 0.25 s ramps up and down (11.25 deg each) and 67.5 deg at 90 deg/s: 1.25 s, more than twice the command
        # timeout; a loaded host can only make it longer.
        assert elapsed_s >= 1.2
        assert driver.stats.retries == 0  # busy kept the driver waiting: no try timed out


def test_lasers_switch_in_the_scene(make_board, scene, sim, drivers):
    board = make_board()
    with drivers(sim(board).url) as driver:
        for lasers in [(True, False), (True, True), (False, True), (False, False)]:
            driver.set_lasers(*lasers)
            assert scene.snapshot().lasers == lasers
            assert driver.status().lasers == lasers


def test_display_messages_move_the_customer(make_board, scene, sim, drivers):
    board = make_board()
    with drivers(sim(board).url) as driver:
        driver.display("PLACE LEFT")
        assert scene.snapshot().placement == "left"
        driver.display("PLACE TARGET 3")
        assert (scene.snapshot().placement, scene.snapshot().target_index) == ("target", 3)
        driver.display("Hold still, please")
        assert scene.snapshot().placement == "target" and board.display_text == "Hold still, please"
        driver.display("STEP OFF")
        assert scene.snapshot().placement == "off"
        with pytest.raises(ValueError, match="at most 40"):
            driver.display("x" * 41)


def test_sweep_fires_every_trigger_with_the_pattern(make_board, scene, pty, drivers):
    fired = []
    board = make_board(trigger=lambda count, angle, lasers: fired.append((count, angle, lasers)))
    records = []
    with drivers(pty(board).url) as driver:
        driver.home()
        result = driver.sweep(90.0, speed_dps=45.0, step_deg=1.0, pattern="LRO", on_record=records.append)
        assert [t.trigger_count for t in result.triggers] == list(range(91))
        assert all(t.recorded for t in result.triggers)
        assert [t.lasers for t in result.triggers[:4]] == [(True, False), (False, True), (False, False), (True, False)]
        assert [t.angle_deg for t in result.triggers] == pytest.approx(np.arange(91.0), abs=0.01)
        assert [(r.count, r.angle_deg, r.lasers) for r in records] == fired
        assert result.end_deg == pytest.approx(90.0, abs=0.02)
        assert scene.snapshot().lasers == (False, False)
        # Rig time is nominal: at cruise speed the triggers are 1/45 s apart.
        cruise_ms = np.diff([r.rig_ms for r in records[10:80]])
        assert np.all(np.abs(cruise_ms - 1000 / 45) <= 1)
        back = driver.sweep(0.0, speed_dps=90.0, step_deg=2.5, pattern="B")
        assert [t.trigger_count for t in back.triggers] == list(range(91, 91 + 37))  # monotonic since power-on
        assert back.triggers[-1].angle_deg == pytest.approx(0.0, abs=0.01)
        assert driver.status().trigger_count == 91 + 37


def test_a_blocking_trigger_slows_the_sweep_but_not_the_rig_clock(make_board, sim, drivers):
    board = make_board(trigger=lambda *frame: time.sleep(0.03), time_scale=0.0)
    records = []
    with drivers(sim(board).url) as driver:
        driver.home()
        started = time.monotonic()
        result = driver.sweep(10.0, speed_dps=45.0, step_deg=0.5, pattern="LR", on_record=records.append)
        elapsed_s = time.monotonic() - started
    assert len(result.triggers) == 21 and elapsed_s >= 21 * 0.03  # the triggers blocked one after the other
    # Nominal profile: the arm stops on the microstep nearest 10 deg; 0.125 s ramps of 2.8125 deg at 360 deg/s2,
    # cruise at 45 deg/s; the last trigger (10 deg) fires just before the arm stops.
    travel_deg = round(10.0 / MICROSTEP_DEG) * MICROSTEP_DEG
    duration_s = 2 * 0.125 + (travel_deg - 2 * 2.8125) / 45.0
    last_trigger_s = duration_s - np.sqrt(2 * (travel_deg - 10.0) / 360.0)
    assert (records[-1].rig_ms - records[0].rig_ms) == pytest.approx(1000 * last_trigger_s, abs=1.5)
    assert driver.stats.retries == 0  # busy kept the driver waiting while frames rendered


def test_a_damaged_command_is_resent_and_runs_once(make_board, scene, sim):
    board = make_board()
    link = sim(board)
    port = serial.serial_for_url(link.url, timeout=1.0)
    port.write(bp.Command(0, bp.SYNC, {}).line())
    assert _read_message(port) == bp.Reply(0, True, {})
    line = bytearray(bp.Command(1, bp.LASER_ON, {"T": "0"}).line())
    line[5] ^= 0x04  # "M71" -> "M75"
    port.write(bytes(line))
    assert _read_message(port) == bp.ResendRequest()
    assert scene.snapshot().lasers == (False, False)
    port.write(bp.Command(1, bp.LASER_ON, {"T": "0"}).line())
    assert _read_message(port) == bp.Reply(1, True, {})
    assert scene.snapshot().lasers == (True, False)
    assert board.counters.resend_requests == 1


def test_a_retransmitted_command_is_answered_again_not_executed_twice(make_board, sim):
    board = make_board()
    port = serial.serial_for_url(sim(board).url, timeout=1.0)
    for command in (bp.Command(0, bp.SYNC, {}), bp.Command(1, bp.HOME, {})):
        port.write(command.line())
        assert _read_message(port).ok
    sweep = bp.Command(2, bp.SWEEP, {"X": "10", "V": "45", "S": "1", "P": "LR"})
    replies = []
    for _ in range(2):
        port.write(sweep.line())
        while not isinstance(message := _read_message(port), bp.Reply):
            assert isinstance(message, (bp.TriggerRecord, bp.Busy))
        replies.append(message)
    assert replies[0] == replies[1] and replies[0].fields["triggers"] == "11"
    port.write(bp.Command(3, bp.STATUS, {}).line())
    assert bp.BoardStatus.from_fields(_read_message(port).fields).trigger_count == 11
    assert board.counters.replayed == 1


def test_a_noisy_line_in_both_directions_still_moves_and_sweeps(make_board, pty, drivers):
    board = make_board()
    link = pty(board, corrupt_rate=0.002, seed=11)
    with drivers(link.url) as driver:
        driver.home()
        targets = np.random.default_rng(5).uniform(-180, 180, 50)
        for target in targets:
            assert abs(driver.move_to(float(target)) - target) <= MICROSTEP_DEG / 2 + 0.005
        driver.move_to(0.0)
        result = driver.sweep(180.0, speed_dps=90.0, step_deg=0.5, pattern="LR")
        assert [t.trigger_count for t in result.triggers] == list(range(board_count := 361))
        assert driver.status().trigger_count == board_count
        repaired = driver.stats.resends + driver.stats.retries + driver.stats.checksum_errors
    assert link.corrupt.corrupted > 0 and repaired > 0
    assert driver.stats.lost_records == sum(not t.recorded for t in result.triggers)


def test_a_stalled_board_times_out_with_advice(make_board, sim, drivers):
    board = make_board()
    with drivers(sim(board).url) as driver:
        driver.home()
        board.stall()
        started = time.monotonic()
        with pytest.raises(DeviceTimeout) as timeout:
            driver.status()
        elapsed_s = time.monotonic() - started
    assert elapsed_s >= 0.5 + 1 + 2  # each try waited twice as long as the one before
    message = str(timeout.value)
    assert message.startswith("board:") and "3 tries (0.5+1+2 s)" in message and "power cycle" in message
    assert driver.stats.retries == 2


def test_unplugged_mid_sweep_then_reconnected_needs_homing(make_board, pty, drivers):
    board = make_board(time_scale=1.0)
    link = pty(board)
    records = []

    def unplug_at_the_fifth_trigger(record: bp.TriggerRecord) -> None:
        records.append(record)
        if len(records) == 5:
            link.disconnect(1.0)

    with drivers(link.url) as driver:
        driver.home()
        with pytest.raises(DeviceDisconnected, match="reconnect"):
            driver.sweep(90.0, speed_dps=45.0, step_deg=1.0, on_record=unplug_at_the_fifth_trigger)
        assert len(records) == 5  # the sweep ended at the unplug, not at its end
        assert driver.stats.retries == 0  # the lost port was noticed as such, not waited out as silence
        with pytest.raises(DeviceDisconnected):
            driver.status()
        identity = driver.reconnect(window_s=5.0)
        assert identity.serial == DEMO_RIG_SERIAL
        status = driver.status()
        assert not status.homed and status.trigger_count == 0 and status.lasers == (False, False)
        with pytest.raises(BoardRefused, match="not homed"):
            driver.move_to(5.0)
        driver.home()
        assert driver.move_to(5.0) == pytest.approx(5.0, abs=0.02)


def test_an_emergency_stop_aborts_a_sweep(make_board, scene, sim, drivers):
    board = make_board(time_scale=1.0)
    records = []

    def stop_from_another_thread_at_the_fifth_trigger(record: bp.TriggerRecord) -> None:
        records.append(record)
        if len(records) == 5:
            threading.Thread(target=driver.emergency_stop).start()

    with drivers(sim(board).url) as driver:
        driver.home()
        with pytest.raises(BoardRefused, match="emergency stop") as aborted:
            driver.sweep(90.0, speed_dps=45.0, step_deg=1.0, on_record=stop_from_another_thread_at_the_fifth_trigger)
        assert aborted.value.code == "aborted"
        status = driver.status()
        assert not status.homed and status.lasers == (False, False)
        assert records[4].angle_deg <= status.angle_deg < 89.0  # stopped on the way, short of the sweep's end


class _ForeignFirmware(VirtualBoard):
    firmware_name = "Marlin"


class _FutureFirmware(VirtualBoard):
    protocol_version = 2


class _Echo(VirtualDevice):
    """A modem-like device that echoes every byte it receives."""

    def receive(self, data: bytes) -> None:
        self.emit(data)


class _Garbage(VirtualDevice):
    """A device on the wrong baud rate: every line it gets is answered with noise."""

    def __init__(self) -> None:
        super().__init__()
        self._rng = np.random.default_rng(2)

    def receive(self, data: bytes) -> None:
        self.emit(self._rng.integers(0, 256, 30, dtype=np.uint8).tobytes() + b"\n")


class _Silent(VirtualDevice):
    def receive(self, data: bytes) -> None:
        pass


@pytest.mark.parametrize(
    "board_class, expected",
    [(_ForeignFirmware, "firmware 'Marlin', expected 'footfit-arm'"), (_FutureFirmware, "speaks protocol 2")],
)
def test_a_board_we_do_not_support_is_refused(make_board, sim, drivers, board_class, expected):
    driver = drivers(sim(make_board(board_class)).url)
    with pytest.raises(WrongDevice, match=expected):
        driver.connect()


@pytest.mark.parametrize("device_class", [_Echo, _Garbage])
def test_a_port_that_echoes_or_babbles_is_not_a_board(pty, drivers, device_class):
    # 2 s a try: on a machine busy with a parallel test run the reader may take over 0.5 s to see the noise
    driver = drivers(pty(device_class()).url, retries=2, command_timeout_s=2.0)
    with pytest.raises(WrongDevice, match="footfit-arm protocol.*check that board_url names the arm board"):
        driver.connect()


def test_a_silent_port_or_a_missing_one_is_not_found(pty, drivers, tmp_path):
    with pytest.raises(DeviceNotFound, match="no answer on .* after 2 tries"):
        drivers(pty(_Silent()).url, retries=2).connect()
    with pytest.raises(DeviceNotFound, match="cannot open"):
        drivers(str(tmp_path / "nothing-here")).connect()
