"""Laser line peaks: where, in each image row, a laser line crosses it, to a fraction of a pixel.

API (also for calibration, on single stills):

    peaks = laser_peaks(images, lasers)              # a sweep: (n, H, W) uint8 and (n, 2) bool laser states
    peaks = laser_peaks(images, laser_off=dark)      # or subtract a laser-off image (H, W) / stack (n, H, W)
    peaks = image_peaks(on_image, off_image)         # one still: laser on minus laser off
    peaks.frame, peaks.u_px, peaks.v_px              # (N,) frame index, sub-pixel column, row
    peaks.strength_dn, peaks.width_px                # (N,) peak above ambient (DN), run above threshold (px)
    peaks.of_frame(i)                                # the peaks of one frame

Image coordinates follow OpenCV (docs/frames.md): the centre of the top-left pixel is (0, 0), so `u_px, v_px`
go straight into `cv2.undistortPoints`. Each row may hold up to `max_per_row` peaks (the line on the foot and,
in the same row, on the plate beyond it); the strongest are kept, listed left to right.

Why this way:
- Ambient light is removed by subtraction, as in Horus. In a sweep the lasers alternate, so the frames just
  before and after a frame show the same scene lit by the *other* laser; their pixel-wise minimum is the ambient
  image (the other laser's line moves between them, so the minimum mostly drops it) and the difference keeps
  this frame's line. With a laser-off image (calibration stills) that image is subtracted instead.
- A peak is a run of pixels at or above `threshold_dn` after subtraction; its position is the centre of mass of
  the subtracted values over the run widened by `WINDOW_PAD_PX` on each side. The centre of mass stays unbiased
  on saturated lines (skin saturates the red channel), where a three-point Gaussian fit does not.
- The frame stamp (core/frame_stamp.py) covers the top-left 192 x 16 px of every image: no peaks there.

The numba kernel (`_peaks_kernel`, parallel over frames) does the work; `laser_peaks_numpy` is the plain
numpy reference the tests compare it with (integer sums in both, so they agree exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import FootfitError
from core.frame_stamp import STAMP_HEIGHT_PX, STAMP_WIDTH_PX
from core.jit import njit, prange

THRESHOLD_DN = 20  # above ambient: the plate line peaks near 100 DN, noise is ~2 DN, JPEG ringing < 10 DN
WINDOW_PAD_PX = 2  # the centre-of-mass window extends the run by this much each side (line sigma 0.6-1.2 px)
MAX_PER_ROW = 4
SKIP_BLOCK_PX = 32  # the kernel skips blocks of this many columns whose maximum is below the threshold


class LaserPeakError(FootfitError):
    """The images or laser states cannot be turned into peaks (wrong shapes, no ambient reference)."""


@dataclass(frozen=True)
class LaserPeaks:
    """Sub-pixel laser line peaks of a stack of frames, ordered by frame, then row, then column."""

    frame: np.ndarray  # (N,) int32 index into the image stack
    u_px: np.ndarray  # (N,) float64 column, pixel centres at integers (OpenCV)
    v_px: np.ndarray  # (N,) float64 row (integer valued: one peak search per row)
    strength_dn: np.ndarray  # (N,) int32 highest subtracted value of the run
    width_px: np.ndarray  # (N,) int32 pixels of the run at or above the threshold
    frames: int  # n, the stack's length (frames without peaks have none listed)

    def __len__(self) -> int:
        return len(self.frame)

    def of_frame(self, index: int) -> "LaserPeaks":
        lo, hi = np.searchsorted(self.frame, [index, index + 1])
        return self.select(slice(lo, hi))

    def select(self, which) -> "LaserPeaks":
        """The peaks picked by a mask, index array or slice."""
        return LaserPeaks(self.frame[which], self.u_px[which], self.v_px[which], self.strength_dn[which],
                          self.width_px[which], self.frames)

    def counts_per_frame(self) -> np.ndarray:
        return np.bincount(self.frame, minlength=self.frames)


# --- references for ambient subtraction ------------------------------------------------------------------------


def ambient_references(lasers: np.ndarray, closed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each frame, the nearest earlier and later frame whose laser state differs. With `closed` the frames
    go once round (a 360 deg sweep), so the last frame comes before the first; otherwise a frame at an end uses
    its one neighbour twice. Raises when a frame has no such neighbour at all."""
    lasers = np.asarray(lasers, dtype=bool)
    if lasers.ndim != 2 or lasers.shape[1] != 2:
        raise LaserPeakError(f"laser states must be (frames, 2) booleans (left, right), got shape {lasers.shape}")
    n = len(lasers)
    code = lasers[:, 0].astype(np.int64) + 2 * lasers[:, 1].astype(np.int64)
    if n and (code == code[0]).all():
        raise LaserPeakError("no frame with another laser state to subtract the ambient light: the sweep must "
                             "alternate lasers (pattern LR), or pass a laser-off image")
    before, after = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    for i in range(n):  # n is a few hundred; the nearest differing frame is almost always the next one
        for direction, out in ((-1, before), (1, after)):
            j = i + direction
            while (closed or 0 <= j < n) and code[j % n] == code[i]:  # ends: another state exists somewhere
                j += direction
            if closed or 0 <= j < n:
                out[i] = j % n
    before = np.where(before < 0, after, before)
    after = np.where(after < 0, before, after)
    return before, after


def _check_stack(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise LaserPeakError(f"images must be a (frames, height, width) uint8 stack, got {images.dtype} "
                             f"{images.shape}")
    if images.shape[0] == 0:
        raise LaserPeakError("no images: the stack is empty")
    return images


def _prepare(images, lasers, laser_off, closed):
    """(images, reference stack, index A, index B) as the kernels take them: the ambient under frame i is the
    pixel-wise maximum of references[A[i]] and references[B[i]]."""
    images = _check_stack(images)
    n, h, w = images.shape
    if laser_off is not None:
        off = np.asarray(laser_off)
        if off.ndim == 2:
            off = off[None]
        if off.dtype != np.uint8 or off.shape[1:] != (h, w) or off.shape[0] not in (1, n):
            raise LaserPeakError(f"laser-off image must be uint8 {h}x{w} (one, or one per frame), got "
                                 f"{off.dtype} {off.shape}")
        index = np.zeros(n, np.int64) if off.shape[0] == 1 else np.arange(n, dtype=np.int64)
        return images, np.ascontiguousarray(off), index, index
    if lasers is None:
        raise LaserPeakError("give the laser state of every frame, or a laser-off image to subtract")
    lasers = np.asarray(lasers)
    if len(lasers) != n:
        raise LaserPeakError(f"{n} images but {len(lasers)} laser states: they must pair up one to one")
    before, after = ambient_references(lasers, closed)
    return images, images, before, after


def _dense_outputs(n: int, h: int, k: int):
    """Zeroed (n, H, k) u, strength, width and (n, H) count: what the kernel and the reference fill, and _compact
    reads."""
    return (np.zeros((n, h, k), np.float64), np.zeros((n, h, k), np.int32), np.zeros((n, h, k), np.int32),
            np.zeros((n, h), np.int32))


def _compact(u, strength, width, count) -> LaserPeaks:
    """Dense (n, H, K) kernel output -> flat LaserPeaks (frame, row, then column order)."""
    n, h, k = u.shape
    keep = np.arange(k)[None, None, :] < count[:, :, None]
    frame, row, _ = np.nonzero(keep)
    return LaserPeaks(frame.astype(np.int32), u[keep], row.astype(np.float64), strength[keep], width[keep], n)


# --- numba kernel ----------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True, nogil=True)
def _peaks_kernel(images, references, ref_a, ref_b, threshold, pad, stamp_h, stamp_w, u_out, strength_out,
                  width_out, count_out):
    n, h, w = images.shape
    k = u_out.shape[2]
    for i in prange(n):
        starts = np.empty(k, np.int64)
        ends = np.empty(k, np.int64)
        peaks = np.empty(k, np.int32)
        block_top = np.empty((w + SKIP_BLOCK_PX - 1) // SKIP_BLOCK_PX, np.int32)
        for v in range(h):
            first = stamp_w if v < stamp_h else 0  # no peaks under the frame stamp
            row = images[i, v]
            a, b = references[ref_a[i], v], references[ref_b[i], v]
            count_out[i, v] = 0
            if _block_tops(row, a, b, block_top) < threshold:
                continue
            kept = _strongest_runs(row, a, b, first, threshold, block_top, starts, ends, peaks)
            for j in range(kept):
                lo, hi = max(first, starts[j] - pad), min(w, ends[j] + pad)
                mass, moment = np.int64(0), np.int64(0)
                for x in range(lo, hi):
                    value = _lit(row, a, b, x)
                    mass += value
                    moment += np.int64(value) * x
                u_out[i, v, j] = moment / mass
                strength_out[i, v, j] = peaks[j]
                width_out[i, v, j] = ends[j] - starts[j]
            count_out[i, v] = kept


@njit(inline="always")
def _lit(row, a, b, x):
    """The laser's light at column x: the pixel minus the ambient (the brighter reference), clipped at 0."""
    return max(np.int32(row[x]) - np.int32(max(a[x], b[x])), np.int32(0))


@njit(inline="always")
def _block_tops(row, a, b, block_top):
    """The highest `_lit` value in each block of SKIP_BLOCK_PX columns, into block_top; returns the row's highest.
    Nothing is stored per pixel: only the few blocks the line crosses are looked at again. The whole blocks run
    a fixed number of columns each, which LLVM vectorises (a bound like min(w, ...) stops it), and the function
    is inlined into the kernel: compiled apart, it ran 3x slower."""
    w = len(row)
    whole = w // SKIP_BLOCK_PX
    top_of_row = np.int32(0)
    for block in range(len(block_top)):
        lo = block * SKIP_BLOCK_PX
        top = np.int32(0)
        if block < whole:
            for x in range(lo, lo + SKIP_BLOCK_PX):
                top = max(top, _lit(row, a, b, x))
        else:
            for x in range(lo, w):
                top = max(top, _lit(row, a, b, x))
        block_top[block] = top
        top_of_row = max(top_of_row, top)
    return top_of_row


@njit(cache=True, nogil=True)
def _strongest_runs(row, a, b, first, threshold, block_top, starts, ends, peaks):
    """Runs of `_lit` >= threshold from column `first`: the k = len(starts) with the highest peak (ties: the
    leftmost), left to right, written into starts/ends/peaks; returns how many. Blocks whose top (block_top) is
    below the threshold are skipped whole: most of a row holds no line."""
    w, k = len(row), len(starts)
    kept = 0
    x = first
    while x < w:
        if x % SKIP_BLOCK_PX == 0 and block_top[x // SKIP_BLOCK_PX] < threshold:
            x += SKIP_BLOCK_PX
            continue
        if _lit(row, a, b, x) < threshold:
            x += 1
            continue
        start, top = x, _lit(row, a, b, x)
        while x < w and _lit(row, a, b, x) >= threshold:
            top = max(top, _lit(row, a, b, x))
            x += 1
        if kept < k:
            starts[kept], ends[kept], peaks[kept] = start, x, top
            kept += 1
            continue
        weakest = 0
        for j in range(1, k):
            if peaks[j] <= peaks[weakest]:  # the rightmost of the weakest ranks last
                weakest = j
        if top > peaks[weakest]:  # drop the weakest, keep left-to-right order
            for j in range(weakest, k - 1):
                starts[j], ends[j], peaks[j] = starts[j + 1], ends[j + 1], peaks[j + 1]
            starts[k - 1], ends[k - 1], peaks[k - 1] = start, x, top
    return kept


def laser_peaks(images: np.ndarray, lasers: np.ndarray | None = None, laser_off: np.ndarray | None = None,
                threshold_dn: int = THRESHOLD_DN, max_per_row: int = MAX_PER_ROW, closed: bool = False) -> LaserPeaks:
    """Sub-pixel laser peaks of every frame (numba, parallel over frames); see the module docstring. `closed`:
    the frames go once round, so the first frame's ambient also comes from the last (ambient_references)."""
    images, references, ref_a, ref_b = _prepare(images, lasers, laser_off, closed)
    n, h, _ = images.shape
    u, strength, width, count = _dense_outputs(n, h, max_per_row)
    _peaks_kernel(images, references, ref_a, ref_b, int(threshold_dn), WINDOW_PAD_PX, STAMP_HEIGHT_PX,
                  STAMP_WIDTH_PX, u, strength, width, count)
    return _compact(u, strength, width, count)


def image_peaks(on_image: np.ndarray, off_image: np.ndarray, threshold_dn: int = THRESHOLD_DN,
                max_per_row: int = MAX_PER_ROW) -> LaserPeaks:
    """Peaks of one still: `on_image` (laser on) minus `off_image` (same view, laser off); both (H, W) uint8."""
    on_image = np.asarray(on_image)
    if on_image.ndim != 2:
        raise LaserPeakError(f"a still must be one (height, width) uint8 image, got shape {on_image.shape}")
    return laser_peaks(on_image[None], laser_off=off_image, threshold_dn=threshold_dn, max_per_row=max_per_row)


# --- numpy reference -------------------------------------------------------------------------------------------


def laser_peaks_numpy(images: np.ndarray, lasers: np.ndarray | None = None, laser_off: np.ndarray | None = None,
                      threshold_dn: int = THRESHOLD_DN, max_per_row: int = MAX_PER_ROW,
                      closed: bool = False) -> LaserPeaks:
    """The same peaks as `laser_peaks`, frame by frame with whole-array numpy operations (for tests, benches)."""
    images, references, ref_a, ref_b = _prepare(images, lasers, laser_off, closed)
    n, h, w = images.shape
    u, strength, width, count = _dense_outputs(n, h, max_per_row)
    columns = np.arange(w, dtype=np.int64)
    for i in range(n):
        ref = np.maximum(references[ref_a[i]], references[ref_b[i]])
        d = np.clip(images[i].astype(np.int64) - ref, 0, None)
        d[:STAMP_HEIGHT_PX, :STAMP_WIDTH_PX] = 0
        row, start, end, top = _runs(d, threshold_dn)
        # strongest runs first within each row (ties: leftmost), keep max_per_row, then back to left-to-right
        order = np.lexsort((start, -top, row))
        rank = np.arange(len(order)) - np.searchsorted(row[order], row[order])
        order = np.sort(order[rank < max_per_row])  # runs are listed by row then column already
        row, start, end, top = row[order], start[order], end[order], top[order]
        first = np.where(row < STAMP_HEIGHT_PX, STAMP_WIDTH_PX, 0)
        lo, hi = np.maximum(first, start - WINDOW_PAD_PX), np.minimum(w, end + WINDOW_PAD_PX)
        mass = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(d, axis=1)], axis=1)
        moment = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(d * columns, axis=1)], axis=1)
        slot = np.arange(len(row)) - np.searchsorted(row, row)
        u[i, row, slot] = (moment[row, hi] - moment[row, lo]) / (mass[row, hi] - mass[row, lo])
        strength[i, row, slot] = top
        width[i, row, slot] = end - start
        count[i] = np.bincount(row, minlength=h)
    return _compact(u, strength, width, count)


def _runs(d: np.ndarray, threshold_dn: int):
    """Runs of pixels at or above the threshold in each row: (row, start, end exclusive, peak value)."""
    h, w = d.shape
    above = np.zeros((h, w + 2), bool)
    above[:, 1:-1] = d >= threshold_dn
    edges = np.diff(above.astype(np.int8), axis=1)
    row, start = np.nonzero(edges == 1)
    _, end = np.nonzero(edges == -1)
    if not len(row):
        return row, start, end, np.zeros(0, np.int64)
    top = _run_max(d.ravel(), row * w + start, row * w + end)
    return row, start, end, top


def _run_max(flat: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Maximum of flat[lo:hi] for each run (runs are disjoint and increasing)."""
    bounds = np.empty(2 * len(lo), np.int64)
    bounds[0::2], bounds[1::2] = lo, hi
    if bounds[-1] == len(flat):  # reduceat cannot take an index past the end
        flat = np.append(flat, 0)
    return np.maximum.reduceat(flat, bounds)[0::2]
