"""Customers, consent, passports (upload, views, list, rescan), feedback; bad input with clear 4xx bodies and
nothing half-written. On SQLite and PostgreSQL, through a real HTTP server."""

from __future__ import annotations

import json

import numpy as np
from sqlmodel import Session, func, select

from api.models import AuditEntry, PassportRecord
from api.privacy import purge_expired
from fitcore.scan.measure import read_points
from testing.api_world import ScanFiles, import_catalogue, scan_files, world


def _ply(points: np.ndarray) -> bytes:
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\nproperty float x\n" \
             f"property float y\nproperty float z\nend_header\n"
    return header.encode() + points.astype("<f4").tobytes()


def _points(ply: bytes, tmp_path) -> np.ndarray:
    path = tmp_path / "points.ply"
    path.write_bytes(ply)
    return read_points(path)


def _passport_count(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(PassportRecord)).one()


def test_customer_consent_and_passport_round_trip(database_url, tmp_path):
    files = scan_files()
    with world(database_url) as w:
        w.customer("A", "C1", consents=())
        r = w.call("A", "kiosk", "POST", "/v1/customers/C1/passports", files=files.multipart())
        assert r.status_code == 409 and "scan storage" in r.json()["detail"]
        w.customer("A", "C2")
        first = w.passport("A", "C2")
        second = w.passport("A", "C2", scan_files(5))
        listed = w.call("A", "webshop", "GET", "/v1/customers/C2/passports").json()
        assert [p["id"] for p in listed] == [second, first]  # newest first
        customer = w.call("A", "webshop", "GET", "/v1/customers/C2").json()
        assert customer["passports"] == 2 and customer["consent"] == {"scan_storage": True, "webshop": True,
                                                                       "marketing": False}

        shop = w.call("A", "webshop", "GET", f"/v1/passports/{first}").json()
        sent = json.loads(files.passport)
        assert shop["feet"]["left"]["measurements"] == sent["feet"]["left"]["measurements"]
        assert shop["pair_sizes"] == sent["pair_sizes"] and shop["fit_results"] == []
        assert "passport" not in shop and "points" not in shop and "pressure" not in shop["feet"]["left"]

        staff = w.call("A", "kiosk", "GET", f"/v1/passports/{first}", params={"view": "staff"}).json()
        assert staff["customer"] == "C2" and staff["passport"] == sent
        ply = w.call("A", "kiosk", "GET", staff["points"]["left"].replace(w.base_url, ""))
        assert ply.status_code == 200
        np.testing.assert_allclose(_points(ply.content, tmp_path), _points(files.left, tmp_path), atol=1e-4)
        assert w.call("A", "webshop", "GET", f"/v1/passports/{first}/points/left").status_code == 403


def test_rescan_replaces_the_passport_in_place(database_url):
    with world(database_url) as w:
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        before = w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}").json()
        r = w.call("A", "kiosk", "PUT", f"/v1/passports/{passport_id}", files=scan_files(5).multipart())
        assert r.status_code == 200, r.text
        after = w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}").json()
        assert after["id"] == passport_id and after["updated_at"] > before["updated_at"]
        assert after["feet"]["left"]["measurements"] == json.loads(scan_files(5).passport)["feet"]["left"][
            "measurements"] != before["feet"]["left"]["measurements"]
        assert len(w.call("A", "webshop", "GET", "/v1/customers/C1/passports").json()) == 1


def test_consent_withdrawal_is_recorded_and_blocks_what_it_covered(database_url):
    with world(database_url) as w:
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        r = w.call("A", "webshop", "POST", "/v1/customers/C1/consents",
                   json={"purpose": "webshop", "granted": False, "source": "webshop"})
        assert r.status_code == 201 and r.json()["consent"]["granted"] is False
        refused = w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}")
        assert refused.status_code == 403 and "webshop" in refused.json()["detail"]
        assert w.call("A", "kiosk", "GET", f"/v1/passports/{passport_id}").status_code == 200  # in store: fine
        r = w.call("A", "kiosk", "POST", "/v1/customers/C1/consents",
                   json={"purpose": "scan_storage", "granted": False, "source": "kiosk"})
        assert r.json()["erased_passports"] == 0  # a kiosk key cannot erase: the privacy purge will
        refused = w.call("A", "kiosk", "GET", f"/v1/passports/{passport_id}")
        assert refused.status_code == 403 and "withdrew scan-storage consent" in refused.json()["detail"]
        history = w.call("A", "kiosk", "GET", "/v1/customers/C1/consents").json()
        assert [(c["purpose"], c["granted"]) for c in history] == [
            ("scan_storage", True), ("webshop", True), ("webshop", False), ("scan_storage", False)]
        assert all(c["recorded_at"].endswith("Z") and c["recorded_by"] for c in history)


def test_erasure_rescan_and_staff_reads_need_no_webshop_consent(database_url):
    """Webshop consent governs what a webshop reads; erasure, a rescan and the staff's reads are not that."""
    with world(database_url) as w:
        w.customer("A", "C1", consents=("scan_storage",))
        passport_id = w.passport("A", "C1")
        assert w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}").status_code == 403
        assert w.call("A", "admin", "GET", f"/v1/passports/{passport_id}/points/left").status_code == 200
        assert w.call("A", "admin", "GET", f"/v1/passports/{passport_id}", params={"view": "staff"}).status_code == 200
        r = w.call("A", "admin", "PUT", f"/v1/passports/{passport_id}", files=scan_files(5).multipart())
        assert r.status_code == 200, r.text
        r = w.call("A", "admin", "DELETE", f"/v1/passports/{passport_id}")
        assert r.status_code == 200 and r.json()["deleted"]["passport"] == 1, r.text


def test_a_webshop_key_lists_passports_only_with_webshop_consent(database_url):
    with world(database_url) as w:
        w.customer("A", "C1", consents=("scan_storage",))
        passport_id = w.passport("A", "C1")
        refused = w.call("A", "webshop", "GET", "/v1/customers/C1/passports")
        assert refused.status_code == 403 and "webshop" in refused.json()["detail"], refused.text
        assert [p["id"] for p in w.call("A", "kiosk", "GET", "/v1/customers/C1/passports").json()] == [passport_id]


def test_withdrawing_scan_storage_erases_only_with_the_erase_scope_or_by_the_privacy_purge(database_url):
    withdraw = {"purpose": "scan_storage", "granted": False, "source": "paper"}
    with world(database_url) as w:
        w.customer("A", "C1")
        w.customer("A", "C2")
        waiting, erased_at_once = w.passport("A", "C1"), w.passport("A", "C2")
        r = w.call("A", "webshop", "POST", "/v1/customers/C1/consents", json=withdraw)  # customers:write only
        assert r.status_code == 201 and r.json()["erased_passports"] == 0, r.text
        assert r.json()["consent"]["source"] == "webshop", "the source is the key's, not what the body claims"
        assert _passport_count(w.engine) == 2
        refused = w.call("A", "kiosk", "GET", f"/v1/passports/{waiting}")
        assert refused.status_code == 403 and "footfit privacy purge" in refused.json()["detail"]
        r = w.call("A", "kiosk", "POST", "/v1/customers/C1/consents",
                   json={"purpose": "marketing", "granted": True, "source": "email"})
        assert r.json()["consent"]["source"] == "kiosk"

        r = w.call("A", "admin", "POST", "/v1/customers/C2/consents", json=withdraw)  # holds passports:erase
        assert r.json()["erased_passports"] == 1
        assert w.call("A", "admin", "GET", f"/v1/passports/{erased_at_once}").status_code == 404

        with Session(w.engine) as session:  # the scheduled privacy job
            assert sum(result.passports for result in purge_expired(session, scan_rows_kept_days=7)) == 1
            purged = session.exec(select(AuditEntry).where(AuditEntry.action == "purge")).all()
        assert _passport_count(w.engine) == 0
        assert [(e.object_id, e.actor) for e in purged] == [(waiting, "cli:privacy-purge")]
        assert "scan-storage consent withdrawn" in purged[0].detail
        assert w.call("A", "kiosk", "GET", "/v1/customers/C1").json()["consent"]["scan_storage"] is False


def test_feedback_events(database_url):
    with world(database_url) as w:
        skus = import_catalogue(w.engine)
        w.customer("A", "C1")
        passport_id = w.passport("A", "C1")
        for event in ({"event": "recommended", "sku": skus[0]}, {"event": "bought", "sku": skus[1]},
                      {"event": "returned", "sku": skus[1], "reason": "too_small", "store": "STORE-A"}):
            r = w.call("A", "kiosk", "POST", f"/v1/passports/{passport_id}/feedback", json=event)
            assert r.status_code == 201, r.text
        events = w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}/feedback").json()
        assert [(e["event"], e["sku"], e["reason"], e["store"]) for e in events] == [
            ("recommended", skus[0], None, "STORE-A"), ("bought", skus[1], None, "STORE-A"),
            ("returned", skus[1], "too_small", "STORE-A")]
        for bad, says in (({"event": "returned", "sku": skus[0]}, "reason"),
                          ({"event": "bought", "sku": skus[0], "reason": "too_large"}, "reason"),
                          ({"event": "bought", "sku": "NO-SUCH-SKU"}, "unknown SKU"),
                          ({"event": "lost", "sku": skus[0]}, "event")):
            r = w.call("A", "webshop", "POST", f"/v1/passports/{passport_id}/feedback", json=bad)
            assert r.status_code == 422 and says in r.text, r.text
        r = w.call("A", "webshop", "POST", f"/v1/passports/{passport_id}/feedback",
                   json={"event": "tried", "sku": skus[0], "store": "STORE-B"})
        assert r.status_code == 404  # tenant B's store
        assert len(w.call("A", "webshop", "GET", f"/v1/passports/{passport_id}/feedback").json()) == 3


def test_bad_uploads_get_clear_4xx_and_leave_nothing(database_url):
    good = scan_files()
    nan_points = _points_with_nan(good.left)
    sent = json.loads(good.passport)
    nan_passport = good.passport.decode().replace(str(sent["cop_sway_mm"]), "NaN", 1).encode()
    huge_passport = good.passport.decode().replace(str(sent["load_left_percent"]), "1e999", 1).encode()
    invalid = json.loads(good.passport)
    invalid["feet"]["left"]["measurements"]["length_mm"] = -3
    other_foot = ScanFiles(good.passport, scan_files(5).left, good.right)
    cases = [
        (ScanFiles(b"{not json", good.left, good.right), 422, "not valid UTF-8 JSON"),
        (ScanFiles(nan_passport, good.left, good.right), 422, "passport.cop_sway_mm"),
        (ScanFiles(huge_passport, good.left, good.right), 422, "passport.load_left_percent"),
        (ScanFiles(json.dumps(invalid).encode(), good.left, good.right), 422, "length_mm"),
        (ScanFiles(good.passport, b"solid foot\nendsolid", good.right), 422, "left.ply is not a PLY file"),
        (ScanFiles(good.passport, good.left, good.right[:300]), 422, "right.ply"),
        (ScanFiles(good.passport, nan_points, good.right), 422, "NaN or infinite"),
        (other_foot, 422, "does not match the passport"),
    ]
    with world(database_url, max_upload_bytes=600_000) as w:
        w.customer("A", "C1")
        for files, status, says in cases:
            r = w.call("A", "kiosk", "POST", "/v1/customers/C1/passports", files=files.multipart())
            assert r.status_code == status and says in r.json()["detail"], (says, r.text)
        assert all(e["location"].startswith("passport.") for e in w.call(
            "A", "kiosk", "POST", "/v1/customers/C1/passports",
            files=ScanFiles(nan_passport, good.left, good.right).multipart()).json()["errors"])
        big = ScanFiles(good.passport, good.left + b"\0" * 600_000, good.right)
        r = w.call("A", "kiosk", "POST", "/v1/customers/C1/passports", files=big.multipart())
        assert r.status_code == 413 and "FOOTFIT_SERVICE__MAX_UPLOAD_BYTES" in r.json()["detail"]
        chunked = w.http.post("/v1/customers/C1/passports", content=iter([b"x" * 400_000] * 2),
                              headers={"Authorization": f"Bearer {w.tenants['A'].keys['kiosk']}",
                                       "Content-Type": "multipart/form-data; boundary=b"})
        assert chunked.status_code == 413
        r = w.call("A", "kiosk", "POST", "/v1/customers/NOBODY/passports", files=good.multipart())
        assert r.status_code == 404 and "loyalty id 'NOBODY'" in r.json()["detail"]
        r = w.call("A", "kiosk", "POST", "/v1/customers/C1/passports", files={"passport": good.passport})
        assert r.status_code == 422 and "body.left" in r.json()["detail"]
        assert _passport_count(w.engine) == 0
        assert w.call("A", "kiosk", "GET", "/v1/customers/C1").json()["passports"] == 0
        passport_id = w.passport("A", "C1")  # the same customer can still upload a good one
        r = w.call("A", "kiosk", "PUT", f"/v1/passports/{passport_id}", files=cases[1][0].multipart())
        assert r.status_code == 422 and _passport_count(w.engine) == 1
        assert w.call("A", "kiosk", "GET", f"/v1/passports/{passport_id}").json()["feet"]["left"][
            "measurements"] == sent["feet"]["left"]["measurements"]  # a failed rescan changed nothing


def test_hostile_passports_get_422_saying_what_to_fix_and_nothing_is_stored(database_url):
    """Issue 13: deep nesting (a RecursionError, 500), fields the passport does not define (a name and e-mail
    address, a 3 MB blob: stored and shown to staff), unbounded strings and lists, a PLY header declaring ten
    billion points, a foot of more points than a scan makes."""
    good = scan_files()
    points = np.frombuffer(good.left.split(b"end_header\n", 1)[1], dtype="<f4").reshape(-1, 3)

    def passport(change) -> bytes:
        sent = json.loads(good.passport)
        change(sent)
        return json.dumps(sent).encode()

    ten_billion = (b"ply\nformat binary_little_endian 1.0\nelement vertex 10000000000\nproperty float x\n"
                   b"property float y\nproperty float z\nend_header\n" + bytes(12))
    cases = [
        (b"[" * 30_000 + b"]" * 30_000, good.left, "recursion limit exceeded"),
        (passport(lambda p: p["feet"]["left"]["quality"].update(name="A. Customer", email="a@example.com")),
         good.left, "passport.feet.left.quality.name: Extra inputs are not permitted (and 1 more)"),
        (passport(lambda p: p["feet"]["right"]["quality"].update(blob="x" * 3_000_000)), good.left,
         "more than a passport takes (65,536)"),
        (passport(lambda p: p.update(rig_serial="R" * 10_000)), good.left, "passport.rig_serial"),
        (passport(lambda p: p["feet"]["left"]["quality"].update(reasons=["r"] * 10_000)), good.left,
         "passport.feet.left.quality.reasons"),
        (good.passport, ten_billion, "left.ply has 10,000,000,000 points"),
        (good.passport, _ply(np.resize(points, (100_001, 3))), "left.ply has 100,001 points, more than the 100,000"),
    ]
    with world(database_url) as w:
        w.customer("A", "C1")
        for passport_json, left, says in cases:
            r = w.call("A", "kiosk", "POST", "/v1/customers/C1/passports",
                       files=ScanFiles(passport_json, left, good.right).multipart())
            assert r.status_code == 422 and says in r.json()["detail"], (says, r.status_code, r.text[:500])
        assert _passport_count(w.engine) == 0


def test_customer_requests_are_validated(database_url):
    with world(database_url) as w:
        w.customer("A", "C1")
        r = w.call("A", "kiosk", "POST", "/v1/customers", json={"loyalty_id": "C1"})
        assert r.status_code == 409 and "exists already" in r.json()["detail"]
        for body in ({"loyalty_id": ""}, {"loyalty_id": "a/b"}, {"loyalty": "C3"}):
            r = w.call("A", "kiosk", "POST", "/v1/customers", json=body)
            assert r.status_code == 422 and r.json()["errors"], r.text
        r = w.call("A", "kiosk", "POST", "/v1/customers/C1/consents",
                   json={"purpose": "spam", "granted": True, "source": "kiosk"})
        assert r.status_code == 422 and "body.purpose" in r.json()["detail"]
        r = w.call("A", "webshop", "GET", "/v1/customers/UNKNOWN")
        assert r.status_code == 404 and "POST /v1/customers" in r.json()["detail"]
        w.customer("B", "C1")  # loyalty ids are per tenant
        assert w.call("B", "webshop", "GET", "/v1/customers/C1").json()["passports"] == 0


def _points_with_nan(ply: bytes) -> bytes:
    header, body = ply.split(b"end_header\n", 1)
    points = np.frombuffer(body, dtype="<f4").reshape(-1, 3).copy()
    points[7, 1] = np.nan
    return _ply(points)
