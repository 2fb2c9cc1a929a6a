"""One small hierarchy of errors, so callers can catch by kind and every message says what to do."""


class FootfitError(Exception):
    """Base of every error footfit raises on purpose; the message is meant for the person at the kiosk or CLI."""


class ConfigError(FootfitError):
    """A setting or command-line value is invalid."""


class DeviceError(FootfitError):
    """A scanner device misbehaved; `device` names it ("board", "plate", "camera")."""

    def __init__(self, device: str, message: str):
        super().__init__(f"{device}: {message}")
        self.device = device


class DeviceNotFound(DeviceError):
    """Nothing answers on the configured port or URL."""


class DeviceDisconnected(DeviceError):
    """The device went away during use; a reconnect may bring it back."""


class DeviceTimeout(DeviceError):
    """The device stopped answering within the allowed time."""


class ProtocolError(DeviceError):
    """Bytes arrived that do not follow the protocol, beyond what retries can repair."""


class WrongDevice(DeviceError):
    """The port answers, but it is not the expected device, firmware or geometry."""


class ScanCancelled(FootfitError):
    """The operator cancelled the scan; nothing was kept."""


class ScanFailed(FootfitError):
    """A scan could not complete; no partial result was kept."""


class SimulatorError(FootfitError):
    """The simulator was asked for something it cannot do (bad fault spec, unreadable subject mesh...)."""


class MeshError(FootfitError):
    """A mesh file cannot be read or written, or holds no usable triangle mesh."""


class CatalogError(FootfitError):
    """The shoe catalogue cannot do what was asked: bad product data, an unusable interior, an unknown SKU."""


class MeasurementError(FootfitError):
    """A foot surface cannot be measured: empty, NaN, not in millimetres, not standing on z = 0, or not a foot."""


class ScanQualityError(FootfitError):
    """A scan was taken but is not good enough to measure (coverage holes, noise, motion, the foot out of view);
    the message gives the reason and what to change before scanning again."""
