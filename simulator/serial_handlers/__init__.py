"""pyserial URL handlers provided by the simulator (pyserial imports `protocol_<scheme>` from here)."""
