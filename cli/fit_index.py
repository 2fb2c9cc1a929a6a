"""`footfit fit-index`: the operator's view of the tenants' fit indexes (api/fit_index.py) on the settings' database:
their size, and a refresh of one tenant's or every tenant's (after a catalogue import, a new season: only new and
changed products are matched; --rebuild matches every passport anew), on Dask as the service runs it (settings
batch.*)."""

from __future__ import annotations

import argparse
import sys
import time

from sqlmodel import Session, select

from api.auth import Principal
from api.batch import Batch
from api.db import open_service_db
from api.fit_index import FitIndex
from api.fitting import Fitting
from api.learning import Learning
from api.models import Tenant
from api.repository import Repository
from api.repository import fit_index as stored
from api.tenancy import tenant_named
from core.settings import get_settings


def _tenants(session: Session, name: str | None) -> list[Tenant]:
    return [tenant_named(session, name)] if name else list(session.exec(select(Tenant).order_by(Tenant.name)))


def _repo(session: Session, tenant: Tenant, actor: str) -> Repository:
    return Repository(session, Principal(actor, tenant.id, None, frozenset({"batch:run"})))


def cmd_fit_index_refresh(args: argparse.Namespace) -> int:
    engine, settings = open_service_db(), get_settings()
    fitting = Fitting(engine)
    batch = Batch(settings.batch)
    index = FitIndex(fitting, Learning(engine, fitting, settings.learning, settings.service.job_lease_s, batch), batch,
                     settings.batch.chunk_passports)
    try:
        with Session(engine) as session:
            for tenant in _tenants(session, args.tenant):
                started = time.perf_counter()
                if args.rebuild:
                    stored.clear(_repo(session, tenant, "cli:fit-index"))
                report = index.refresh(_repo(session, tenant, "cli:fit-index"),
                                       lambda share: print(f"\r{tenant.name}: {share:.0%}", end="", file=sys.stderr))
                print(f"\r{tenant.name:24s} {report.passports:8d} passports in {report.chunks} chunks; matched "
                      f"{report.matched_passports} new or rescanned passports and {report.columns} columns, "
                      f"dropped {report.dropped_slots} slots, removed {report.removed_columns} columns; "
                      f"{time.perf_counter() - started:.1f} s")
    finally:
        batch.close()
        fitting.close()
    return 0


def cmd_fit_index_show(args: argparse.Namespace) -> int:
    with Session(open_service_db()) as session:
        for tenant in _tenants(session, args.tenant):
            chunks, passports, size = stored.size_of(_repo(session, tenant, "cli:fit-index"))
            per = f"{size / passports:,.0f} bytes per passport" if passports else "empty"
            print(f"{tenant.name:24s} {passports:8d} passports in {chunks} chunks, {size / 1e6:,.1f} MB ({per})")
    return 0


def add_fit_index_commands(sub) -> None:
    group = sub.add_parser("fit-index", help="the tenants' fit indexes (what mailings read)",
                           description="The tenants' fit indexes: per passport and product whether it fits, its "
                                       "best size and score (docs/batch.md).")
    commands = group.add_subparsers(dest="fit_index_command", required=True, metavar="COMMAND")
    refresh = commands.add_parser("refresh", help="match new and rescanned passports and new or changed products")
    refresh.add_argument("--tenant", help="this tenant only (default: every tenant)")
    refresh.add_argument("--rebuild", action="store_true",
                         help="drop the index first and match every passport from its points again (descriptors "
                              "fitted to today's catalogue; a damaged index)")
    refresh.set_defaults(func=cmd_fit_index_refresh)
    show = commands.add_parser("show", help="each tenant's index: passports, chunks, bytes")
    show.add_argument("--tenant", help="this tenant only (default: every tenant)")
    show.set_defaults(func=cmd_fit_index_show)
