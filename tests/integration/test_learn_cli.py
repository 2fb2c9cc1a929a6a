"""`footfit learn`, `footfit kpis` and `footfit catalog quality` end to end on the settings' database (SQLite and
PostgreSQL): feedback posted to the service, then learned from, listed, judged again (unchanged), reported on and
rolled back from the command line."""

from __future__ import annotations

import pytest

from testing.api_world import World, import_catalogue, scan_files, world

FEET = (2, 3, 4)
SEASONS = 8


@pytest.fixture
def footfit_env() -> dict[str, str]:
    """Learning starts from the few events these tests post."""
    return {"FOOTFIT_LEARNING__MIN_EVENTS": "20"}


def _post_tries(w: World, hiking_id: int) -> int:
    """Customers try every model in its advised size, the hiking one's toes hit and they keep the size up; a
    webshop purchase of each; how many events say what became of a size."""
    said = 0
    models = [m["fit"]["model_id"] for m in w.call("A", "admin", "GET", f"/v1/passports/{w.passport_ids[0]}/"
                                                                      f"recommendations").json()]
    for season in range(SEASONS):
        for passport_id in w.passport_ids:
            for model_id in models:
                size = w.call("A", "kiosk", "GET", f"/v1/passports/{passport_id}/sizes/{model_id}").json()
                tries = [{"sku": size["sku"], "kept": True}]
                if model_id == hiking_id and size["size_up"]:
                    tries = [{"sku": size["sku"], "kept": False, "complaint": {"region": "toe", "direction": "tight"}},
                             {"sku": size["size_up"]["sku"], "kept": True}]
                for t in tries:
                    r = w.call("A", "kiosk", "POST", f"/v1/passports/{passport_id}/feedback",
                               json={"event": "tried", "advice_arm": size["advice_arm"], **t})
                    assert r.status_code == 201, r.text
                    said += 1
            for event in ({"event": "bought"}, {"event": "returned", "reason": "too_small"}):
                r = w.call("A", "webshop", "POST", f"/v1/passports/{passport_id}/feedback",
                           json={"sku": size["sku"], **event})
                assert r.status_code == 201, r.text
            said += 1
    return said


def test_learn_status_quality_kpis_and_rollback_from_the_command_line(footfit, database_url):
    with world(database_url) as w:
        code, out, _ = footfit("learn")
        assert code == 0 and "every tenant: too_few_events - (in use: prior); 0 events" in out

        import_catalogue(w.engine)
        w.passport_ids = []
        for seed in FEET:
            w.customer("A", f"C{seed}")
            w.passport_ids.append(w.passport("A", f"C{seed}", scan_files(seed)))
        models = w.call("A", "admin", "GET", f"/v1/passports/{w.passport_ids[0]}/recommendations").json()
        hiking = next(m for m in models if m["category"] == "hiking")
        said = _post_tries(w, hiking["fit"]["model_id"])

        code, out, _ = footfit("learn")
        assert code == 0, out
        assert out.startswith("every tenant: adopted ") and f"{said} events" in out, out
        version = out.split()[3]
        assert f"(in use: {version})" in out

        code, out, _ = footfit("learn")
        assert code == 0 and f"every tenant: unchanged {version} (in use: {version})" in out

        code, out, _ = footfit("learn", "--status")
        assert code == 0 and f"in use for every tenant: {version}" in out
        assert f"* {version}  every tenant" in out and "adopted" in out and "by hand only" not in out

        code, out, _ = footfit("catalog", "quality")
        assert code == 0 and out.startswith(f"learned state {version} (every tenant):")
        first = out.splitlines()[1]
        assert f"{hiking['brand']} {hiking['model_code']}" in first and "shorter than its interior reads" in first

        code, out, _ = footfit("kpis", "--tenant", "tenant-a", "--by", "arm")
        assert code == 0 and out.splitlines()[0].split()[:3] == ["period", "group", "events"]
        rows = {line.split()[1]: line.split() for line in out.splitlines()[1:]}
        assert set(rows) <= {"learning", "holdout", "(none)"} and "(none)" in rows  # the webshop's posted no arm

        code, out, _ = footfit("learn", "--rollback", version)
        assert code == 0 and f"learned state {version} (every tenant) rolled back; in use now: prior" in out
        code, _, err = footfit("learn", "--rollback", version)
        assert code == 1 and err.startswith("footfit: ") and "rolled back, not adopted" in err
        code, _, err = footfit("learn", "--tenant", "tenant-a")
        assert code == 1 and "learning is pooled over every tenant" in err
        code, _, err = footfit("kpis", "--tenant", "nobody")
        assert code == 1 and "nobody" in err
