"""The `footfit` command: the one place that wires the layers together (devices or the simulator, scan
processing, the catalogue, the service)."""
