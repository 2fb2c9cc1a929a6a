"""Fault injection: the spec syntax other tools script, and the plan it parses into.

Spec: comma-separated `name=value` items, e.g. `corrupt=0.001,drop=0.02,disconnect=plate@0.4:3`.
- corrupt=RATE               byte error rate on both serial lines (each byte flipped with this probability)
- corrupt-board=RATE, corrupt-plate=RATE
                             the same for one line only (overrides corrupt= for that line)
- drop=RATE                  share of plate frames lost
- camera-drop=RATE           share of camera frames lost
- stall=board@FRACTION       from that point of the scan the board stops answering (for good)
- disconnect=DEVICE@FRACTION[:SECONDS]
                             DEVICE (board, plate, camera) vanishes at FRACTION of the scan, for SECONDS
                             (transient) or for good (no SECONDS). May be given more than once.
FRACTION is the progress of the whole two-foot scan as the simulator sees it: (feet done + share of the current
foot's sweep) / 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import SimulatorError

DEVICES = ("board", "plate", "camera")


@dataclass(frozen=True)
class Disconnect:
    device: str
    at_fraction: float
    seconds: float | None  # None: permanent


@dataclass(frozen=True)
class FaultPlan:
    corrupt_rate: float = 0.0
    board_corrupt_rate: float | None = None  # None: corrupt_rate
    plate_corrupt_rate: float | None = None
    plate_drop_rate: float = 0.0
    camera_drop_rate: float = 0.0
    board_stall_at: float | None = None
    disconnects: tuple[Disconnect, ...] = field(default_factory=tuple)

    def corrupt_rate_for(self, line: str) -> float:
        rate = self.board_corrupt_rate if line == "board" else self.plate_corrupt_rate
        return self.corrupt_rate if rate is None else rate

    @property
    def is_clean(self) -> bool:
        return self == FaultPlan()


def _rate(name: str, value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise SimulatorError(f"fault '{name}={value}': the rate must be a number between 0 and 1") from None
    if not 0.0 <= rate < 1.0:
        raise SimulatorError(f"fault '{name}={value}': the rate must be at least 0 and below 1")
    return rate


def _fraction(item: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SimulatorError(f"fault '{item}': '{text}' is not a fraction of the scan (0-1)") from None
    if not 0.0 <= value <= 1.0:
        raise SimulatorError(f"fault '{item}': the point of the scan must be between 0 and 1, not {value}")
    return value


def _device_at(item: str, value: str) -> tuple[str, str]:
    device, sep, rest = value.partition("@")
    if not sep or device not in DEVICES:
        raise SimulatorError(f"fault '{item}': write DEVICE@FRACTION with DEVICE one of {', '.join(DEVICES)}")
    return device, rest


def parse_faults(spec: str | None) -> FaultPlan:
    """Parse a fault spec; an empty or None spec means no faults."""
    if not spec or not spec.strip():
        return FaultPlan()
    values: dict = {"disconnects": []}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise SimulatorError(f"fault '{item}': write name=value (e.g. corrupt=0.001)")
        if name == "corrupt":
            values["corrupt_rate"] = _rate(name, value)
        elif name in ("corrupt-board", "corrupt-plate"):
            values[f"{name.split('-')[1]}_corrupt_rate"] = _rate(name, value)
        elif name == "drop":
            values["plate_drop_rate"] = _rate(name, value)
        elif name == "camera-drop":
            values["camera_drop_rate"] = _rate(name, value)
        elif name == "stall":
            device, at = _device_at(item, value)
            if device != "board":
                raise SimulatorError(f"fault '{item}': only the board can stall (stall=board@FRACTION)")
            values["board_stall_at"] = _fraction(item, at)
        elif name == "disconnect":
            device, rest = _device_at(item, value)
            at, colon, seconds = rest.partition(":")
            outage = None
            if colon:
                try:
                    outage = float(seconds)
                except ValueError:
                    raise SimulatorError(f"fault '{item}': the outage '{seconds}' must be seconds") from None
                if outage <= 0:
                    raise SimulatorError(f"fault '{item}': the outage must be positive seconds")
            values["disconnects"].append(Disconnect(device, _fraction(item, at), outage))
        else:
            raise SimulatorError(
                f"unknown fault '{name}': use corrupt, corrupt-board, corrupt-plate, drop, camera-drop, stall or "
                f"disconnect (see --help)"
            )
    values["disconnects"] = tuple(values["disconnects"])
    return FaultPlan(**values)
