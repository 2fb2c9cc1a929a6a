"""Drivers for the scanner's devices (motor board, pressure plate, camera) and the scan session that drives them.

Every port is opened by URL (`serial.serial_for_url`, `cv2.VideoCapture`), so hardware, pseudo-terminals and
the simulator go through the same code. Nothing here may import the simulator.
"""
