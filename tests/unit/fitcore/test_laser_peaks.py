"""Laser peaks: sub-pixel positions of synthetic lines, ambient subtraction, the frame stamp, numba = numpy."""

import numpy as np
import pytest

from core.frame_stamp import STAMP_HEIGHT_PX, STAMP_WIDTH_PX
from fitcore.scan.laser_peaks import LaserPeakError, ambient_references, image_peaks, laser_peaks, laser_peaks_numpy

H, W = 120, 480


def line_image(centres_px: np.ndarray, peak_dn: float, sigma_px: float = 1.2, ambient_dn: float = 30.0,
               noise_dn: float = 2.0, seed: int = 0) -> np.ndarray:
    """A laser line whose Gaussian profile is centred on column centres_px[v] in row v, over a textured ambient."""
    rng = np.random.default_rng(seed)
    u = np.arange(W)[None, :]
    line = peak_dn * np.exp(-0.5 * ((u - centres_px[:, None]) / sigma_px) ** 2)
    ambient = ambient_dn * (1 + 0.5 * np.sin(u / 7.0)) * np.ones((H, 1))
    return np.clip(np.rint(ambient + line + rng.normal(0, noise_dn, (H, W))), 0, 255).astype(np.uint8)


def ambient_only(seed: int = 1) -> np.ndarray:
    return line_image(np.full(H, -100.0), 0.0, seed=seed)


def slanted_centres(seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 260.0 + 0.37 * np.arange(H) + rng.uniform(-0.5, 0.5, H)


@pytest.mark.parametrize("peak_dn, sigma_px", [(120.0, 1.2), (120.0, 0.6), (700.0, 1.2)])  # 700: saturated
def test_sub_pixel_position_of_a_line(peak_dn, sigma_px):
    centres = slanted_centres()
    on = line_image(centres, peak_dn, sigma_px)
    peaks = image_peaks(on, ambient_only())
    assert len(peaks) == H  # one per row, none missing
    assert np.array_equal(peaks.v_px, np.arange(H))
    error = peaks.u_px - centres[peaks.v_px.astype(int)]
    assert np.abs(error).max() < 0.2  # 2 DN noise on both images
    assert np.sqrt(np.mean(error ** 2)) < 0.06
    assert abs(error.mean()) < 0.02, "no bias"


def test_alternating_sweep_keeps_each_frames_own_line():
    left_line, right_line = slanted_centres(3), slanted_centres(4) + 120
    frames = np.stack([line_image(left_line if i % 2 == 0 else right_line, 150.0, seed=10 + i) for i in range(4)])
    lasers = np.array([[i % 2 == 0, i % 2 == 1] for i in range(4)])
    peaks = laser_peaks(frames, lasers)
    for i, truth in enumerate([left_line, right_line, left_line, right_line]):
        mine = peaks.of_frame(i)
        assert len(mine) == H, "one peak per row: the other laser's line was subtracted away"
        assert np.abs(mine.u_px - truth).max() < 0.15


def test_references_are_the_nearest_frames_with_the_other_laser():
    lasers = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [0, 1], [1, 0]], bool)
    before, after = ambient_references(lasers)
    assert before.tolist() == [1, 0, 1, 2, 2, 4]
    assert after.tolist() == [1, 2, 3, 5, 5, 4]


def test_no_peaks_under_the_frame_stamp():
    centres = np.full(H, 60.0)  # inside the stamp's columns
    peaks = image_peaks(line_image(centres, 150.0), ambient_only())
    assert np.all(peaks.v_px >= STAMP_HEIGHT_PX) and len(peaks) == H - STAMP_HEIGHT_PX
    assert STAMP_WIDTH_PX > 60


def test_several_lines_in_a_row_keep_the_strongest_left_to_right():
    rows = np.arange(H)
    image = np.zeros((H, W), np.uint8)
    for u, dn in [(40, 60), (250, 200), (100, 90), (300, 40), (160, 120), (200, 90)]:
        image[:, u] = dn
    peaks = image_peaks(image, np.zeros_like(image), max_per_row=4)
    row = peaks.select(peaks.v_px == 50)
    assert row.u_px.tolist() == [100.0, 160.0, 200.0, 250.0]  # 60 and 40 DN dropped, ties both kept
    assert row.strength_dn.tolist() == [90, 120, 90, 200]
    assert len(peaks) == 4 * len(rows[rows >= STAMP_HEIGHT_PX]) + 3 * STAMP_HEIGHT_PX


def test_numba_kernel_equals_numpy_reference():
    rng = np.random.default_rng(5)
    n = 6
    frames = np.stack([line_image(slanted_centres(i) - 60 * (i % 2), 400.0, seed=i) for i in range(n)])
    frames[:, :, 20:40] = rng.integers(0, 255, (n, H, 20))  # speckle-like clutter: many runs per row
    lasers = np.array([[i % 2 == 0, i % 2 == 1] for i in range(n)])
    for kwargs in ({}, {"threshold_dn": 5, "max_per_row": 2}):
        fast, slow = laser_peaks(frames, lasers, **kwargs), laser_peaks_numpy(frames, lasers, **kwargs)
        assert len(fast) > n * H
        for field in ("frame", "u_px", "v_px", "strength_dn", "width_px"):
            assert np.array_equal(getattr(fast, field), getattr(slow, field)), field
    off = ambient_only()
    assert np.array_equal(laser_peaks(frames, laser_off=off).u_px, laser_peaks_numpy(frames, laser_off=off).u_px)


def test_bad_input_says_what_is_wrong():
    frames = np.zeros((3, H, W), np.uint8)
    with pytest.raises(LaserPeakError, match="pair up"):
        laser_peaks(frames, np.ones((2, 2), bool))
    with pytest.raises(LaserPeakError, match="alternate lasers"):
        laser_peaks(frames, np.array([[1, 0]] * 3, bool))
    with pytest.raises(LaserPeakError, match="uint8"):
        laser_peaks(frames.astype(np.float32), np.array([[1, 0], [0, 1], [1, 0]], bool))
    with pytest.raises(LaserPeakError, match="laser-off image"):
        laser_peaks(frames, laser_off=np.zeros((H, W + 1), np.uint8))
    with pytest.raises(LaserPeakError, match="empty"):
        laser_peaks(np.zeros((0, H, W), np.uint8), np.zeros((0, 2), bool))


def test_a_closed_sweep_wraps_round_for_its_references():
    lasers = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], bool)
    before, after = ambient_references(lasers, closed=True)
    assert before.tolist() == [3, 0, 1, 2]
    assert after.tolist() == [1, 2, 3, 0]
