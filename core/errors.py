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


class CalibrationError(FootfitError):
    """No usable calibration: missing, stale, for another rig, or out of tolerance."""


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


class ServiceError(FootfitError):
    """A fit-service request that cannot be served; the API answers with the status its subclass stands for."""


class Unauthenticated(ServiceError):
    """No API key, or one that is unknown, expired or revoked."""


class Forbidden(ServiceError):
    """The key is valid but lacks the scope (or is a kiosk key) for this operation."""


class NotFound(ServiceError):
    """No such object in the caller's tenant (another tenant's objects are not found either)."""


class Conflict(ServiceError):
    """The request contradicts stored state: a duplicate loyalty id, a missing consent."""


class InvalidInput(ServiceError):
    """A request's content is unusable (malformed passport or PLY, NaN, unknown size); the message says what to fix,
    `errors` lists (location, message) pairs when there are several."""

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.errors = errors or []
