"""The shared ground under every other package: one settings object, the error hierarchy, mesh input/output,
size formulas and systems, the shared vocabulary, and the scan data types that devices produce and scan
processing reads. Imports nothing of footfit's."""
