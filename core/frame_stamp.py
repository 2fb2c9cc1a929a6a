"""The frame stamp the rig's camera embeds in every image, like the embedded frame info of industrial cameras.

Why: MJPEG over HTTP (or USB) carries no frame number, so the host cannot tell a stale frame from a fresh one
or notice a lost one. The camera therefore paints 48 bits as 8x8-pixel black/white blocks into the top-left
corner of each image (2 rows of 24 blocks, 192x16 px), row by row, most significant bit first:

    8 bits  marker 0b10110010 (a frame without a stamp almost never shows it)
    1 bit   triggered (1: the frame answers a hardware trigger; 0: free-running)
   31 bits  counter (the trigger count in sweeps, a free-run counter otherwise; wraps at 2**31)
    8 bits  CRC-8 (polynomial 0x07) over the flag and counter

Blocks sit on the JPEG 8x8 grid and use only grey levels, so JPEG (quality >= 80, any chroma subsampling)
keeps every block on the right side of mid-grey; the decoder reads each block's inner 4x4 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_PX = 8
BLOCKS_PER_ROW = 24
ROWS = 2
MARKER = 0b10110010
COUNTER_BITS = 31
STAMP_WIDTH_PX = BLOCK_PX * BLOCKS_PER_ROW
STAMP_HEIGHT_PX = BLOCK_PX * ROWS
_DARK, _LIGHT = 16, 240  # painted levels, away from the clipping ends


@dataclass(frozen=True)
class FrameStamp:
    triggered: bool
    counter: int  # 0 .. 2**31 - 1


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _payload(stamp: FrameStamp) -> int:
    return (int(stamp.triggered) << COUNTER_BITS) | (stamp.counter & ((1 << COUNTER_BITS) - 1))


def _bits(stamp: FrameStamp) -> np.ndarray:
    payload = _payload(stamp)
    word = (MARKER << 40) | (payload << 8) | _crc8(payload.to_bytes(4, "big"))
    return np.array([(word >> (47 - i)) & 1 for i in range(48)], dtype=np.uint8)


def encode(image: np.ndarray, stamp: FrameStamp) -> None:
    """Paint `stamp` into the top-left corner of `image` (8-bit grey or BGR, at least 192x16), in place."""
    if image.shape[0] < STAMP_HEIGHT_PX or image.shape[1] < STAMP_WIDTH_PX:
        raise ValueError(f"frame stamp needs at least {STAMP_WIDTH_PX}x{STAMP_HEIGHT_PX} px, got {image.shape}")
    levels = np.where(_bits(stamp) == 1, _LIGHT, _DARK).astype(np.uint8).reshape(ROWS, BLOCKS_PER_ROW)
    blocks = np.kron(levels, np.ones((BLOCK_PX, BLOCK_PX), dtype=np.uint8))
    region = image[:STAMP_HEIGHT_PX, :STAMP_WIDTH_PX]
    region[...] = blocks if image.ndim == 2 else blocks[:, :, None]


def decode(image: np.ndarray) -> FrameStamp | None:
    """The stamp in `image`, or None when the corner holds no valid stamp (no marker or a bad CRC)."""
    if image is None or image.shape[0] < STAMP_HEIGHT_PX or image.shape[1] < STAMP_WIDTH_PX:
        return None
    region = image[:STAMP_HEIGHT_PX, :STAMP_WIDTH_PX].astype(np.float32)
    grey = region.mean(axis=2) if region.ndim == 3 else region
    centres = grey.reshape(ROWS, BLOCK_PX, BLOCKS_PER_ROW, BLOCK_PX)[:, 2:6, :, 2:6].mean(axis=(1, 3))
    bits = (centres.ravel() > 128).astype(np.int64)
    word = int("".join(map(str, bits)), 2)
    payload = (word >> 8) & 0xFFFFFFFF
    if word >> 40 != MARKER or word & 0xFF != _crc8(payload.to_bytes(4, "big")):
        return None
    return FrameStamp(triggered=bool(payload >> COUNTER_BITS), counter=payload & ((1 << COUNTER_BITS) - 1))
