"""`footfit demo`: the service ready to try on the embedded default, from a fresh machine.

On the settings' database (a SQLite file under the data folder unless FOOTFIT_DATABASE_URL says otherwise) it
makes sure, each step only when missing: the tenant `demo` with its store STORE-01, a generated shoe catalogue
that the demo tenant sells (its assortment, with stock in STORE-01), the simulated rig FF-DEMO-0001 registered
there and calibrated (`footfit calibrate --simulator --quick`). It then issues fresh demo keys (the previous ones
are revoked: keys are stored hashed and cannot be shown again), prints the kiosk address and the keys, starts the
rig's agent (`footfit agent`, as a store's PC runs it; it stops with the demo) and serves (`footfit serve`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from sqlalchemy import func
from sqlmodel import Session, select

from api import auth, tenancy
from api.db import open_service_db
from api.models import ApiKey, Kiosk, Tenant
from cli.catalog import import_generated_catalogue
from cli.scan import calibrate
from cli.service import cmd_serve
from core.errors import CalibrationError, CatalogError
from core.settings import get_settings
from device.capture import QUICK_VIEWS
from fitcore.scan.calibration import load_calibration
from shoe_db.models import SizeVariant
from simulator.process import SimulatedRigProvider
from simulator.rig import DEMO_RIG_SERIAL

TENANT = "demo"
STORE = "STORE-01"  # the generated catalogue's one store, so recommendations can filter by its stock
KIOSK_SCOPES = "scans:write,scans:read,customers:write,passports:read,recommendations:read,feedback:write"
LABEL = "footfit demo"
CATALOGUE_SEED = 7


def cmd_demo(args: argparse.Namespace) -> int:
    engine = open_service_db()
    with Session(engine, expire_on_commit=False) as session:
        _ensure_tenant(session)
        _ensure_catalogue(session, args.models)
        tokens = _fresh_keys(session)
    engine.dispose()
    _ensure_calibration()
    service = get_settings().service
    host, port = args.host or service.host, args.port if args.port is not None else service.port
    print(f"footfit demo: kiosk page at http://{host}:{port}/kiosk (sign in with the kiosk key; rig "
          f"{DEMO_RIG_SERIAL} in store {STORE} of tenant {TENANT}), webshop try-on page at "
          f"http://{host}:{port}/tryon, API at http://{host}:{port}/v1 (docs at http://{host}:{port}/docs)\n"
          f"kiosk key:  {tokens['kiosk']}\n"
          f"tenant key: {tokens['tenant']}  (every scope: export, erase, catalogue, mailing jobs)\n"
          f"try: curl -H 'Authorization: Bearer {tokens['kiosk']}' http://{host}:{port}/v1/me", flush=True)
    agent = _start_agent(f"http://{host}:{port}", tokens["kiosk"])
    try:
        return cmd_serve(argparse.Namespace(host=host, port=port, log_level=args.log_level, workers=1))
    finally:
        agent.terminate()
        agent.wait(timeout=30)


def _start_agent(service_url: str, kiosk_key: str) -> subprocess.Popen:
    """The demo rig's agent beside the service, as a store's PC runs it; it stops with this process, however this
    one ends (it asks the service for work until the service answers)."""
    return subprocess.Popen([sys.executable, "-m", "cli.main", "agent", "--service", service_url, "--key", kiosk_key,
                             "--rig", DEMO_RIG_SERIAL, "--exit-with-parent"])


def _ensure_catalogue(session: Session, models: int) -> None:
    if session.exec(select(func.count()).select_from(SizeVariant)).one():
        return
    print(f"footfit demo: generating a catalogue of {models} shoe models (seed {CATALOGUE_SEED})", flush=True)
    summaries = import_generated_catalogue(models, CATALOGUE_SEED, stores=1, tenant=TENANT)
    if any(not s.committed or s.errors for s in summaries):
        raise CatalogError("the generated catalogue could not be imported:\n"
                           + "\n".join(s.report() for s in summaries))


def _ensure_tenant(session: Session) -> None:
    if session.exec(select(Tenant).where(Tenant.name == TENANT)).first() is None:
        tenancy.create_tenant(session, TENANT, get_settings().service.retention_days_default)
    tenancy.add_store(session, TENANT, STORE)  # idempotent for the owner
    if session.exec(select(Kiosk).where(Kiosk.rig_serial == DEMO_RIG_SERIAL)).first() is None:
        tenancy.add_kiosk(session, TENANT, STORE, DEMO_RIG_SERIAL, name="demo kiosk (simulated rig)")


def _fresh_keys(session: Session) -> dict[str, str]:
    """A kiosk key and a tenant key; the demo keys of earlier runs are revoked."""
    for key in session.exec(select(ApiKey).where(ApiKey.label == LABEL, ApiKey.revoked_at.is_(None))).all():
        auth.revoke_key(session, key.id)
    days = get_settings().service.key_expiry_days_default
    _, kiosk = auth.create_key(session, TENANT, auth.parse_scopes(KIOSK_SCOPES), days, store=STORE, label=LABEL)
    _, tenant = auth.create_key(session, TENANT, frozenset(auth.SCOPES), days, label=LABEL)
    return {"kiosk": kiosk, "tenant": tenant}


def _ensure_calibration() -> None:
    try:
        load_calibration(get_settings().data_dir, DEMO_RIG_SERIAL)
    except CalibrationError as missing:
        print(f"footfit demo: {missing}; calibrating the simulated rig (about a minute)", flush=True)
        settings = get_settings()
        calibrate(settings, SimulatedRigProvider(settings.device), DEMO_RIG_SERIAL, QUICK_VIEWS)


def add_demo_command(sub) -> None:
    demo = sub.add_parser("demo", help="set up a demo tenant, rig, catalogue and keys, then serve",
                          description="Serve the fit service on the embedded default with a simulated rig and a "
                                      "generated catalogue: creates what is missing (catalogue, tenant 'demo', "
                                      "store, rig, its calibration), prints the kiosk address and fresh demo keys, "
                                      "then serves until Ctrl-C (docs/api.md).")
    demo.add_argument("--host", help="default: settings (FOOTFIT_SERVICE__HOST, 127.0.0.1)")
    demo.add_argument("--port", type=int, help="default: settings (FOOTFIT_SERVICE__PORT, 8000)")
    demo.add_argument("--models", type=int, default=200, metavar="N",
                      help="shoe models to generate when the catalogue is empty (default 200)")
    demo.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    demo.set_defaults(func=cmd_demo)
