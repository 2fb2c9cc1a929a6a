"""The core of footfit: shared settings and errors, then calibration, reconstruction, measurement, matching."""
