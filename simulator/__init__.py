"""The virtual scanner: subjects, virtual board/plate/camera on real ports, hidden rig geometry, faults.

Nothing outside this package may read the hidden rig geometry or the subjects' true poses; the reconstruction
learns them from images, as it must on hardware.
"""
