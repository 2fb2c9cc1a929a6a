import pytest

from core.errors import SimulatorError
from simulator.faults import Disconnect, FaultPlan, parse_faults


def test_empty_spec_is_clean():
    assert parse_faults("").is_clean
    assert parse_faults(None) == FaultPlan()


def test_full_spec():
    plan = parse_faults("corrupt=0.001, drop=0.02,camera-drop=0.01,stall=board@0.5,"
                        "disconnect=plate@0.3:2,disconnect=camera@0.8")
    assert plan.corrupt_rate == 0.001
    assert plan.plate_drop_rate == 0.02
    assert plan.camera_drop_rate == 0.01
    assert plan.board_stall_at == 0.5
    assert plan.disconnects == (Disconnect("plate", 0.3, 2.0), Disconnect("camera", 0.8, None))
    assert not plan.is_clean
    assert plan.corrupt_rate_for("board") == plan.corrupt_rate_for("plate") == 0.001


def test_per_line_corruption_overrides_the_common_rate():
    plan = parse_faults("corrupt=0.001,corrupt-plate=0.00001")
    assert plan.corrupt_rate_for("board") == 0.001
    assert plan.corrupt_rate_for("plate") == 0.00001


@pytest.mark.parametrize("spec, words", [
    ("corrupt", "name=value"),
    ("corrupt=abc", "number"),
    ("drop=1.5", "below 1"),
    ("stall=plate@0.5", "only the board"),
    ("disconnect=printer@0.5", "board, plate, camera"),
    ("disconnect=board@2", "between 0 and 1"),
    ("disconnect=board@0.5:-1", "positive"),
    ("disconnect=board@0.5:soon", "seconds"),
    ("explode=1", "unknown fault"),
])
def test_bad_specs_say_what_to_fix(spec, words):
    with pytest.raises(SimulatorError, match=words):
        parse_faults(spec)
