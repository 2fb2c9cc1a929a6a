"""The pressure plate driver against the virtual plate, over real pseudo-terminals and in-process serial ports."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from scipy import ndimage

from core.errors import DeviceDisconnected, DeviceError, DeviceNotFound, DeviceTimeout, ProtocolError, WrongDevice
from device import plate_protocol as proto
from device.plate import PENDING_FRAMES, PLATE_COLS, PLATE_MODEL, PLATE_ROWS, PressurePlate, sensel_centres_mm
from simulator.plate import GRAVITY_M_S2, VirtualPlate
from simulator.ports import InProcessLink, PtyLink
from simulator.rig import DEMO_RIG_SERIAL, rig_geometry
from simulator.scene import Scene
from simulator.subjects import template_subject

BODY_WEIGHT_KG = 75.0
PLATE_SERIAL = "PP-TEST-0001"
SENSEL_AREA_CM2 = 0.25
READ_TIMEOUT_S = 3.0  # generous: other test runs may share the 2 cores
_names = itertools.count()


class ForeignPlate(VirtualPlate):
    """Another vendor's plate: same protocol, a model this driver does not know."""

    model = "ACME-PM-1"


@pytest.fixture(scope="module")
def subject():
    return template_subject(BODY_WEIGHT_KG)


@pytest.fixture
def scene(subject):
    return Scene(rig_geometry(DEMO_RIG_SERIAL), subject.left, subject.right, subject.body_weight_kg, seed=3)


@pytest.fixture
def rig(scene, tmp_path):
    """Factory: a virtual plate on a link (pty or in-process) and a driver on its URL; all closed afterwards."""
    made = []

    def make(pty: bool = False, corrupt_rate: float = 0.0, plate_class=VirtualPlate, **plate_options):
        plate = plate_class(scene, PLATE_SERIAL, seed=11, **plate_options)
        if pty:
            link = PtyLink(plate, tmp_path / "plate", corrupt_rate, seed=5)
        else:
            link = InProcessLink(plate, f"plate{next(_names)}", corrupt_rate, seed=5)
        driver = PressurePlate(link.url, command_timeout_s=1.0, command_retries=3)
        made.append((plate, link, driver))
        return plate, link, driver

    yield make
    for plate, link, driver in made:
        driver.close()
        plate.power_cycle()
        link.close()


def force_n(frame) -> float:
    return float(frame.pressures_kpa.sum()) * SENSEL_AREA_CM2 / 10  # kPa * cm2 = N / 10


def wait_for_feet(driver: PressurePlate, limit_frames: int = 6000) -> None:
    """Read until the customer's weight is on the plate (the plate prepares footprints in the background; a busy
    host may take a while, so the limit is a minute of the plate's frames)."""
    for _ in range(limit_frames):
        if force_n(driver.read_frame(READ_TIMEOUT_S)) >= 0.5 * BODY_WEIGHT_KG * GRAVITY_M_S2:
            return
    pytest.fail("the feet never loaded the plate")


def read_frames(driver: PressurePlate, count: int, timeout_s: float = READ_TIMEOUT_S) -> list:
    """The next `count` intact frames: a span of the plate's clock, whatever the host's pace."""
    return [driver.read_frame(timeout_s) for _ in range(count)]


# --- protocol ---


def test_parser_recovers_frames_around_garbage_and_corruption():
    frames = [proto.encode(proto.MSG_MATRIX, seq, seq * 10_000, proto.encode_matrix(np.full((4, 6), seq, np.uint16)))
              for seq in range(12)]
    frames[2] = frames[2][:20] + bytes([frames[2][20] ^ 0x10]) + frames[2][21:]  # a payload bit
    length_at = proto.HEADER_BYTES - 1  # high byte of the length: the frame now claims ~4 KB more
    frames[5] = frames[5][:length_at] + bytes([frames[5][length_at] ^ 0x10]) + frames[5][length_at + 1:]
    stream = b"\x00\xa5garbage" + b"".join(frames[:8]) + b"\x5a\xa5\x5a" + b"".join(frames[8:]) + bytes(5000)
    parser = proto.FrameParser()
    rng = random.Random(1)
    received = []
    while stream:
        cut = rng.randint(1, 64)
        parser.feed(stream[:cut])
        stream = stream[cut:]
        while (frame := parser.next_frame()) is not None:
            received.append(frame)
    assert [f.seq for f in received] == [0, 1, 3, 4, 6, 7, 8, 9, 10, 11]
    for f in received:
        assert f.time_us == f.seq * 10_000
        assert (proto.decode_matrix(f.payload) == f.seq).all()
    assert parser.crc_errors == 2
    assert parser.resyncs >= 3 and parser.bytes_skipped > 5000


def test_sequence_gap_counts_across_the_wrap_around():
    assert proto.sequence_gap(10, 11) == 0
    assert proto.sequence_gap(10, 14) == 3
    assert proto.sequence_gap(65535, 0) == 0
    assert proto.sequence_gap(65533, 2) == 4


def test_sensel_centres_follow_the_documented_layout():
    x_mm, y_mm = sensel_centres_mm()
    assert (x_mm[0], x_mm[-1], y_mm[0], y_mm[-1]) == (-197.5, 197.5, -497.5, 497.5)
    assert np.allclose(np.diff(x_mm), 5.0) and np.allclose(np.diff(y_mm), 5.0)


# --- driver against the virtual plate ---


def test_identity_and_calibration(rig):
    plate, _, driver = rig()
    identity = driver.connect()
    assert identity == plate.identity
    assert (identity.model, identity.rows, identity.cols) == (PLATE_MODEL, PLATE_ROWS, PLATE_COLS)
    assert driver.calibration.offset_counts == plate.calibration.offset_counts
    assert driver.calibration.adc_max_count == 4095
    assert driver.calibration.gain_kpa_per_count == pytest.approx(plate.calibration.gain_kpa_per_count, rel=1e-6)


def test_zero_then_stand_measures_body_weight_on_two_feet(rig, scene):
    _, _, driver = rig(pty=True)
    scene.place("off")
    driver.connect()
    driver.zero(n_frames=20)
    scene.place("stand")
    driver.start()
    wait_for_feet(driver)
    frames = [driver.read_frame(READ_TIMEOUT_S) for _ in range(20)]
    for frame in frames:
        assert force_n(frame) == pytest.approx(BODY_WEIGHT_KG * GRAVITY_M_S2, rel=0.03)
    pressures = frames[-1].pressures_kpa
    contact = pressures > 0
    # A high arch leaves heel and forefoot apart: join prints closer than 50 mm, then count the feet.
    blobs, _ = ndimage.label(ndimage.binary_dilation(contact, iterations=5))
    areas_cm2 = np.bincount(blobs[contact], minlength=blobs.max() + 1) * SENSEL_AREA_CM2
    feet = np.flatnonzero(areas_cm2 > 5)
    assert len(feet) == 2, f"expected two feet, found prints of {sorted(areas_cm2[1:])} cm2"
    _, y_mm = sensel_centres_mm()
    centres_y = sorted(float(y_mm[np.nonzero(contact & (blobs == b))[1]].mean()) for b in feet)
    assert centres_y[0] < -50 and centres_y[1] > 50  # right foot at -y, left foot at +y
    assert all(80 <= areas_cm2[b] <= 160 for b in feet), areas_cm2[feet]
    left_share = pressures[:, PLATE_COLS // 2:].sum() / pressures.sum()
    assert 0.4 < left_share < 0.6


def test_pressure_picture_is_plausible(rig, scene):
    _, _, driver = rig()
    scene.place("off")
    driver.connect()
    driver.zero(n_frames=10)
    scene.place("stand")
    driver.start()
    wait_for_feet(driver)
    frames = read_frames(driver, 200)  # 2 s of postural sway
    pressures = np.mean([f.pressures_kpa for f in frames], axis=0)
    assert 100 <= pressures.max() <= 300 and all(f.saturated == 0 for f in frames)
    x_mm, _ = sensel_centres_mm()
    left = pressures[:, PLATE_COLS // 2:]
    rows = np.flatnonzero(left.max(axis=1) > 10)  # the foot, not a stray noise sensel
    thirds = np.array_split(left[rows[0]:rows[-1] + 1], 3)  # heel, midfoot, forefoot along plate x
    heel, mid, fore = (t.sum() for t in thirds)
    assert mid < 0.25 * (heel + mid + fore)
    assert thirds[1].max() < min(thirds[0].max(), thirds[2].max())
    cop_x_mm = [float(f.pressures_kpa.sum(axis=1) @ x_mm / f.pressures_kpa.sum()) for f in frames]
    assert 0.5 < np.ptp(cop_x_mm) < 15, "postural sway moves the centre of pressure a few mm"


def test_streams_at_100_hz(rig):
    _, _, driver = rig(pty=True)
    driver.connect()
    driver.start()
    frames = read_frames(driver, 150)
    # Measured on the plate's clock: the host's own pace on a shared 2-core machine is no property of the plate.
    seqs, times_s = np.array([f.seq for f in frames]), np.array([f.time_s for f in frames])
    assert (np.diff(seqs) > 0).all(), "frames arrive in order"
    assert np.diff(times_s) / np.diff(seqs) == pytest.approx(0.01, rel=0.01)  # each frame sampled 10 ms after the last
    produced = seqs[-1] - seqs[0] + 1  # received or lost on the way (a stalled host loses bytes)
    assert driver.stats.dropped_frames == produced - len(frames)
    assert driver.stats.frames == len(frames)
    driver.stop()
    with pytest.raises(DeviceError, match="call start"):
        driver.read_frame(READ_TIMEOUT_S)


def test_corrupted_line_never_yields_a_corrupted_frame(rig):
    """A 26.9 KB frame survives a byte error rate r with probability exp(-26900 r): 58 % at 2e-5, but only 1.4e-6
    at 5e-4. So at 5e-4 no frame is intact: the driver must count the failures, return nothing corrupted, say
    clearly why, and carry on streaming the moment the line is clean again."""
    plate, link, driver = rig(pty=True, corrupt_rate=2e-5)
    driver.connect()
    driver.start()
    returned = read_frames(driver, 60)
    assert driver.stats.crc_errors > 10  # 42 % of the frames are damaged: about 43 on the way to 60 intact ones
    link.corrupt.rate = 5e-4
    failures_before = driver.stats.crc_errors
    errors = []
    for _ in range(PENDING_FRAMES + 1000):  # intact frames already on their way still arrive first
        try:
            returned.append(driver.read_frame(timeout_s=0.5))
        except ProtocolError as exc:
            errors.append(str(exc))
            if len(errors) == 2:
                break
    assert len(errors) == 2 and all("CRC" in e and "cable" in e for e in errors)
    assert driver.stats.crc_errors - failures_before > 20
    link.corrupt.rate = 0.0
    returned += [driver.read_frame(READ_TIMEOUT_S) for _ in range(20)]
    for frame in returned:
        sent = plate.sent_counts(frame.seq)
        assert sent is not None and np.array_equal(frame.raw, sent)
    stats = driver.stats
    assert stats.resyncs > 0 and stats.bytes_skipped > 0
    assert stats.frames == len(returned)


def test_dropped_frames_are_counted_from_sequence_gaps(rig):
    plate, _, driver = rig(drop_rate=0.05)
    driver.connect()
    driver.start()
    frames = read_frames(driver, 150)
    first, last = frames[0].seq, frames[-1].seq
    truly_dropped = sum(first < seq < last for seq in plate.dropped)
    assert truly_dropped > 0
    assert driver.stats.dropped_frames == truly_dropped
    assert driver.stats.frames == len(frames) == last - first + 1 - truly_dropped


def test_wrong_matrix_size_is_refused(rig):
    _, _, driver = rig(rows=64)
    with pytest.raises(WrongDevice, match=r"64 x 200.*expected 80 x 200"):
        driver.connect()


def test_unknown_model_is_refused(rig):
    _, _, driver = rig(plate_class=ForeignPlate)
    with pytest.raises(WrongDevice, match=f"ACME-PM-1.*expected the '{PLATE_MODEL}'"):
        driver.connect()


def test_missing_port_is_reported(tmp_path):
    url = str(tmp_path / "no-plate-here")
    with pytest.raises(DeviceNotFound, match="no-plate-here.*plate_url"):
        PressurePlate(url).connect()


def test_transient_disconnect_then_reconnect(rig):
    _, link, driver = rig(pty=True)
    driver.connect()
    driver.start()
    driver.read_frame(READ_TIMEOUT_S)
    link.disconnect(1.0)
    with pytest.raises(DeviceDisconnected, match="reconnect"):
        read_frames(driver, PENDING_FRAMES + 1000)  # frames already on their way still arrive first
    identity = driver.reconnect(window_s=5.0)
    assert identity.serial == PLATE_SERIAL
    frames = [driver.read_frame(READ_TIMEOUT_S) for _ in range(10)]
    assert (np.diff([f.seq for f in frames]) > 0).all()
    assert driver.stats.dropped_frames < 1000  # the rebooted plate's counter restarting is not a gap of ~65,000


def test_plate_that_stops_sending_times_out(rig):
    plate, _, driver = rig()
    driver.connect()
    driver.start()
    driver.read_frame(READ_TIMEOUT_S)
    plate.power_cycle()  # a brown-out: the plate reboots and waits for START
    with pytest.raises(DeviceTimeout, match=r"plate: no pressure frame .* for 0\.5 s.*powered"):
        read_frames(driver, PENDING_FRAMES + 100, timeout_s=0.5)  # frames already on their way still arrive


def test_zero_refuses_a_loaded_plate(rig, scene):
    _, _, driver = rig()
    scene.place("stand")
    driver.connect()
    driver.start()
    wait_for_feet(driver)
    with pytest.raises(DeviceError, match="while zeroing.*step off"):
        driver.zero(n_frames=5)
