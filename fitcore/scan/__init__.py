"""From a raw scan to a foot passport: calibration solving, laser peaks, triangulation, reconstruction, the foot
frame, measurements, plantar pressure and the passport record (docs/reconstruction.md, docs/measurements.md)."""
