"""The raw result of a scan: every camera frame with its arm angle and laser state, and the plate recording.

A RawScan is only ever built complete: the scan session raises instead of returning a partial one, and `save`
writes into a staging folder that is renamed into place at the end, so a reader never sees half a scan.
Files under DIR/raw/: scan.json (metadata), left_frames.npy / right_frames.npy (uint8, n x H x W, the camera's
red channel, where the red line lasers show), plate.npz (pressures in kPa, times, sequence numbers).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FootfitError

FORMAT_VERSION = 1


@dataclass
class FootFrames:
    """The sweep of one foot, sorted by arm angle."""

    side: str
    angles_deg: np.ndarray  # (n,) arm angle the board reported at each trigger
    lasers: np.ndarray  # (n, 2) bool: left, right laser on
    images: np.ndarray  # (n, H, W) uint8: red channel


@dataclass
class PlateRecording:
    """Pressure frames while the customer stood on both feet (plate frame, see docs/frames.md)."""

    pressures_kpa: np.ndarray  # (n, rows, cols) float32, zeroed on the unloaded plate
    times_s: np.ndarray  # (n,) device time
    sequence: np.ndarray  # (n,) frame sequence numbers
    pitch_mm: float
    dropped_frames: int


@dataclass
class ScanStats:
    """What went wrong and was repaired during the scan, for the operator and the closing report."""

    board_retries: int = 0
    board_checksum_errors: int = 0
    plate_crc_errors: int = 0
    plate_dropped_frames: int = 0
    camera_missing_frames: int = 0
    reconnects: dict[str, int] = field(default_factory=dict)
    resumed_sweeps: int = 0
    wall_seconds: float = 0.0


@dataclass
class RawScan:
    rig_serial: str
    board_firmware: str
    plate_serial: str
    camera_source: str
    profile: str
    width_px: int
    height_px: int
    started_at: str  # ISO 8601 UTC
    finished_at: str
    feet: dict[str, FootFrames]
    plate: PlateRecording
    stats: ScanStats

    def save(self, out_dir: Path) -> Path:
        """Write under out_dir/raw atomically (staging folder, then rename)."""
        final = Path(out_dir) / "raw"
        staging = Path(out_dir) / ".raw.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        meta = {
            "format_version": FORMAT_VERSION,
            **{k: getattr(self, k) for k in ("rig_serial", "board_firmware", "plate_serial", "camera_source",
                                            "profile", "width_px", "height_px", "started_at", "finished_at")},
            "stats": asdict(self.stats),
            "plate_pitch_mm": self.plate.pitch_mm,
            "plate_dropped_frames": self.plate.dropped_frames,
            "feet": {
                side: {"angles_deg": f.angles_deg.tolist(), "lasers": f.lasers.astype(int).tolist()}
                for side, f in self.feet.items()
            },
        }
        for side, foot in self.feet.items():
            np.save(staging / f"{side}_frames.npy", foot.images)
        np.savez(staging / "plate.npz", pressures_kpa=self.plate.pressures_kpa, times_s=self.plate.times_s,
                 sequence=self.plate.sequence)
        (staging / "scan.json").write_text(json.dumps(meta, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        return final

    @classmethod
    def load(cls, out_dir: Path) -> "RawScan":
        raw = Path(out_dir) / "raw"
        try:
            meta = json.loads((raw / "scan.json").read_text())
        except FileNotFoundError:
            raise FootfitError(f"no raw scan in {out_dir}: expected {raw / 'scan.json'}") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise FootfitError(f"{raw}: raw scan format {meta.get('format_version')} is not {FORMAT_VERSION}")
        feet = {
            side: FootFrames(
                side=side,
                angles_deg=np.asarray(f["angles_deg"], dtype=float),
                lasers=np.asarray(f["lasers"], dtype=bool).reshape(-1, 2),
                images=np.load(raw / f"{side}_frames.npy", mmap_mode="r"),
            )
            for side, f in meta["feet"].items()
        }
        plate = np.load(raw / "plate.npz")
        return cls(
            feet=feet,
            plate=PlateRecording(plate["pressures_kpa"], plate["times_s"], plate["sequence"],
                                 meta["plate_pitch_mm"], meta["plate_dropped_frames"]),
            stats=ScanStats(**meta["stats"]),
            **{k: meta[k] for k in ("rig_serial", "board_firmware", "plate_serial", "camera_source", "profile",
                                    "width_px", "height_px", "started_at", "finished_at")},
        )
