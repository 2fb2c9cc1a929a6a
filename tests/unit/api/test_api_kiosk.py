"""What the kiosk needs from the service: a kiosk scan's pressure map (kept with its passport, staff only, erased
and exported with it), the camera preview of a running scan (memory only), and each store's size system.
On SQLite and PostgreSQL; the scan itself on a simulated rig (light profile)."""

from __future__ import annotations

import io
import json
import zipfile

import cv2
import numpy as np
import pytest
from sqlmodel import Session

from api.auth import authenticate
from api.models import PressureMapRecord
from api.passport_upload import parse_upload
from api.repository import Repository, customers, passports
from cli.main import main
from device.plate import PLATE_PITCH_MM
from fitcore.scan.pressure import PressureMap, plate_metrics, pressure_map
from fitcore.scan.rig_scan import PREVIEW_WIDTH_PX, preview_jpeg
from testing.api_world import scan_files, world
from testing.footprints import footprint
from testing.kiosk_world import RIG, kiosk_world, start, wait_for


def schematic_map() -> PressureMap:
    frames = np.stack([footprint(110.0, 25.0, kpa=60.0) + footprint(-110.0, 35.0, kpa=50.0)] * 20)
    return pressure_map(frames, PLATE_PITCH_MM, plate_metrics(frames, PLATE_PITCH_MM))


def kiosk_passport(w, loyalty_id: str) -> str:
    """A passport stored as a kiosk scan stores it: with its pressure map (through the repository)."""
    files = scan_files()
    upload = parse_upload(files.passport, {"left": files.left, "right": files.right})
    with Session(w.engine, expire_on_commit=False) as session:
        repo = Repository(session, authenticate(session, w.tenants["A"].keys["kiosk"]))
        return passports.add(repo, customers.get(repo, loyalty_id), upload, source="kiosk",
                             pressure=schematic_map()).id


def test_the_pressure_map_is_staff_only_erased_and_exported_with_its_passport(database_url):
    with world(database_url) as w:
        w.customer("A", "C1")
        scanned, uploaded = kiosk_passport(w, "C1"), w.passport("A", "C1")

        r = w.call("A", "kiosk", "GET", f"/v1/passports/{scanned}/pressure")
        assert r.status_code == 200, r.text
        assert PressureMap.model_validate(r.json()) == schematic_map()
        assert r.json()["left"]["arch_type"] in ("high", "normal", "flat") and r.json()["pitch_mm"] == PLATE_PITCH_MM
        refused = w.call("A", "webshop", "GET", f"/v1/passports/{scanned}/pressure")
        assert refused.status_code == 403 and "scans:read" in refused.json()["detail"]
        assert w.call("B", "admin", "GET", f"/v1/passports/{scanned}/pressure").status_code == 404
        missing = w.call("A", "kiosk", "GET", f"/v1/passports/{uploaded}/pressure")
        assert missing.status_code == 404 and "has no pressure map" in missing.json()["detail"]

        archive = zipfile.ZipFile(io.BytesIO(w.call("A", "admin", "GET", "/v1/customers/C1/export").content))
        assert PressureMap.model_validate_json(archive.read(f"passports/{scanned}/pressure_map.json")) == \
            schematic_map()
        assert f"passports/{uploaded}/pressure_map.json" not in archive.namelist()
        assert "pressure_map" not in json.loads(archive.read("customer.json")), "a file, not rows of customer.json"

        # a rescan by upload replaces the scan: the old scan's map goes with it
        rescan = w.call("A", "kiosk", "PUT", f"/v1/passports/{scanned}", files=scan_files().multipart())
        assert rescan.status_code == 200
        assert w.call("A", "kiosk", "GET", f"/v1/passports/{scanned}/pressure").status_code == 404

        erased = kiosk_passport(w, "C1")
        r = w.call("A", "admin", "DELETE", f"/v1/passports/{erased}")
        assert r.status_code == 200 and r.json()["deleted"]["pressure_map"] == 1
        last = kiosk_passport(w, "C1")
        r = w.call("A", "admin", "DELETE", "/v1/customers/C1")
        assert r.status_code == 200 and r.json()["deleted"]["pressure_map"] == 1
        with Session(w.engine) as session:
            assert session.get(PressureMapRecord, last) is None


def test_withdrawing_scan_storage_consent_erases_the_pressure_maps(database_url):
    """Withdrawn with a key that may erase (a kiosk key only records the withdrawal: test_api_passports)."""
    with world(database_url) as w:
        w.customer("A", "C1")
        scanned = kiosk_passport(w, "C1")
        r = w.call("A", "admin", "POST", "/v1/customers/C1/consents",
                   json={"purpose": "scan_storage", "granted": False, "source": "kiosk"})
        assert r.status_code == 201 and r.json()["erased_passports"] == 1
        with Session(w.engine) as session:
            assert session.get(PressureMapRecord, scanned) is None


def test_a_store_has_a_size_system_set_by_the_cli_and_shown_to_its_tenant(database_url, monkeypatch, capsys):
    from core.settings import get_settings

    with world(database_url) as w:
        monkeypatch.setenv("FOOTFIT_DATABASE_URL", database_url)
        get_settings.cache_clear()
        try:
            assert main(["stores", "create", "--tenant", "tenant-a", "--size-system", "uk", "STORE-A2"]) == 0
            assert "(sizes: uk)" in capsys.readouterr().out
            assert main(["stores", "update", "--tenant", "tenant-a", "--size-system", "mondopoint", "STORE-A"]) == 0
            assert main(["stores", "add", "--tenant", "tenant-a", "STORE-A2"]) == 0, "adding again keeps the system"
            with pytest.raises(SystemExit):
                main(["stores", "update", "--tenant", "tenant-a", "--size-system", "cm", "STORE-A"])
            assert "invalid choice: 'cm'" in capsys.readouterr().err
            assert main(["stores", "update", "--tenant", "tenant-b", "--size-system", "us", "STORE-A"]) != 0
            assert "has no store 'STORE-A'" in capsys.readouterr().err
        finally:
            get_settings.cache_clear()
        assert w.call("A", "kiosk", "GET", "/v1/stores").json() == [
            {"code": "STORE-A", "kiosks": [], "size_system": "mondopoint"},
            {"code": "STORE-A2", "kiosks": [], "size_system": "uk"}]
        assert w.call("B", "kiosk", "GET", "/v1/stores").json() == [
            {"code": "STORE-B", "kiosks": [], "size_system": "eu"}], "the default, and nothing of tenant A's"
        me = w.call("A", "kiosk", "GET", "/v1/me").json()
        assert me["store"] == "STORE-A" and me["retention_days"] == 30, "what the kiosk tells before consent"


def test_the_camera_preview_is_a_small_grey_jpeg_of_the_frame():
    frame = np.zeros((960, 1280, 3), np.uint8)
    frame[400:560, 600:680] = (0, 0, 255)  # a red laser line
    image = cv2.imdecode(np.frombuffer(preview_jpeg(frame), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.shape == (240, PREVIEW_WIDTH_PX) and image[120, 160] > 50 and image[10, 10] < 5


@pytest.mark.slow
def test_a_kiosk_scan_shows_its_camera_while_scanning_and_keeps_its_pressure_map(tmp_path):
    with kiosk_world(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as w:
        w.customer("A", "C1")
        scan = start(w, "C1").json()
        early = w.call("A", "kiosk", "GET", f"/v1/scans/{scan['id']}/preview")
        assert early.status_code == 404 and "no camera frame yet" in early.json()["detail"]
        wait_for(w, scan["id"], lambda s: s["phase"] in ("left", "right"))
        r = w.call("A", "kiosk", "GET", f"/v1/scans/{scan['id']}/preview")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text
        assert r.headers["cache-control"] == "no-store"
        image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
        assert image.ndim == 2 and image.shape[1] == PREVIEW_WIDTH_PX and image.std() > 1, "a grey camera picture"
        assert w.call("A", "webshop", "GET", f"/v1/scans/{scan['id']}/preview").status_code == 403

        done = wait_for(w, scan["id"], lambda s: s["state"] != "running")
        assert done["state"] == "done" and done["failed_device"] is None, done
        assert w.call("A", "kiosk", "GET", f"/v1/scans/{scan['id']}/preview").status_code == 404, "forgotten"
        picture = w.call("A", "kiosk", "GET", f"/v1/passports/{done['passport_id']}/pressure").json()
        staff = w.call("A", "kiosk", "GET", f"/v1/passports/{done['passport_id']}?view=staff").json()
        for side, sign in (("left", 1), ("right", -1)):
            assert picture[side]["arch_type"] == staff["passport"]["feet"][side]["pressure"]["arch_type"]
            outline = np.vstack([np.array(o) for o in picture[side]["outlines_mm"]])
            assert sign * outline[:, 1].mean() > 50, "plate frame: +y is the customer's left"
        grid = np.array(picture["mean_kpa"])
        assert grid.max() == pytest.approx(picture["max_kpa"], abs=0.1) and 0 < len(picture["cop_path_mm"]) <= 300
        assert RIG == done["rig"]
