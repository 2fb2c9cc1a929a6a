"""`footfit learn`, `footfit kpis` and `footfit catalog quality`: the learning job by hand, its versions and rollback,
a tenant's KPIs of the advice, and the catalogue's data quality as the feedback sees it (api/learning.py,
api/kpis.py; docs/learning.md). They work on the database of the settings, as the service does; a service process
uses a version adopted or rolled back here within api.learning.RELOAD_S."""

from __future__ import annotations

import argparse
from datetime import datetime

from sqlmodel import Session

from api.auth import Principal
from api.batch import Batch
from api.db import open_service_db
from api.fitting import Fitting
from api.kpis import KPI_GROUPS, KPI_PERIODS, kpis
from api.learning import Learning
from api.repository import Repository
from api.tenancy import tenant_named
from core.settings import get_settings


def _learning() -> Learning:
    engine, settings = open_service_db(), get_settings()
    return Learning(engine, Fitting(engine), settings.learning, settings.service.job_lease_s, Batch(settings.batch))


def cmd_learn(args: argparse.Namespace) -> int:
    learning = _learning()
    try:
        if args.rollback:
            rolled = learning.roll_back(args.rollback, args.tenant)
            print(f"learned state {rolled.rolled_back.version} ({rolled.rolled_back.learned_from}) rolled back; in "
                  f"use now: {rolled.in_use}")
            return 0
        if args.status:
            _print_status(learning)
            return 0
        runs = learning.run(args.tenant, actor="cli:learn")
    finally:
        learning.fitting.close()
        learning.batch.close()
    for run in runs:
        print(f"{run.learned_from}: {run.outcome} {run.version or '-'} (in use: {run.in_use}); {run.events} events, "
              f"{run.held_out} held out, {run.skipped} skipped; {run.seconds:.1f} s. {run.detail}")
    return 0


def _print_status(learning: Learning) -> None:
    status = learning.status()
    pooled = "pooled over every tenant" if status.pooled else "per tenant"
    schedule = f"every {status.interval_hours:g} h" if status.interval_hours else "by hand only"
    finished = f"{status.last_finished_at:%Y-%m-%d %H:%M} UTC" if status.last_finished_at else "never"
    print(f"learning {pooled}, {schedule}; last run finished {finished}; A/B holdout {status.ab_holdout_share:.0%}")
    for scope, version in status.in_use.items():
        print(f"in use for {scope}: {version}")
    for v in status.versions:
        judged = (f"log loss {v.log_loss:.4f} vs {v.in_use_log_loss:.4f} of {v.compared_with}"
                  if v.log_loss is not None and v.in_use_log_loss is not None else "not judged")
        mark = "*" if v.in_use else " "
        print(f"{mark} {v.version}  {v.learned_from:16s} {v.status:11s} {v.created_at:%Y-%m-%d %H:%M}  "
              f"{v.events:6d} events, {v.held_out:5d} held out; {judged}")


def cmd_kpis(args: argparse.Namespace) -> int:
    with Session(open_service_db(), expire_on_commit=False) as session:
        caller = Principal("cli:kpis", tenant_named(session, args.tenant).id, None, frozenset({"kpis:read"}))
        out = kpis(Repository(session, caller), args.since, args.until, args.by, args.per)
    print(f"{'period':10s} {'group':24s} {'events':>7s} {'visits':>7s} {'1st kept':>8s} {'bought':>7s} "
          f"{'ret.size':>8s} {'/100':>6s} {'exch.':>6s} {'/100':>6s}")
    for row in out.rows:
        def number(x: float | None, spec: str) -> str:
            return "-" if x is None else format(x, spec)

        print(f"{str(row.period_start or 'all'):10s} {row.group[:24]:24s} {row.events:7d} {row.visits:7d} "
              f"{number(row.first_size_kept, '8.1%')} {row.purchases:7d} {row.returns_for_size:8d} "
              f"{number(row.returns_for_size_per_100, '6.1f')} {row.exchanges:6d} "
              f"{number(row.exchanges_per_100, '6.1f')}")
    return 0


def cmd_catalog_quality(args: argparse.Namespace) -> int:
    report = _learning().quality(args.tenant, args.limit)
    if report.learning_version is None:
        print(f"nothing learned is in use for {report.learned_from}: run `footfit learn` once there is feedback")
        return 0
    print(f"learned state {report.learning_version} ({report.learned_from}): {len(report.entries)} size runs whose "
          f"feedback disagrees with their interior")
    for e in report.entries:
        print(f"{e.evidence:6.1f} SD  {e.brand} {e.model_code} {e.model_name} ({e.width}): {e.finding}")
    return 0


def _day(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or time (YYYY-MM-DD[THH:MM], UTC)") from None


def add_learning_commands(sub) -> None:
    learn = sub.add_parser("learn", help="learn from the feedback now; the learned versions; roll one back",
                           description="Learn from every tenant's feedback (or, with learning per tenant, each "
                                       "tenant's), judge the new state against the one in use on the most recent "
                                       "feedback and adopt it if it predicts that better (docs/learning.md).")
    learn.add_argument("--tenant", metavar="NAME", help="with learning per tenant (FOOTFIT_LEARNING__POOLED=false): "
                                                        "only this tenant's")
    action = learn.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="the learned versions and the one in use; learn nothing")
    action.add_argument("--rollback", metavar="VERSION", help="take this adopted version out of use; the one adopted "
                                                              "before it is used again")
    learn.set_defaults(func=cmd_learn)

    kpi = sub.add_parser("kpis", help="a tenant's KPIs of the advice",
                         description="First size kept in store visits, returns for size and exchanges per 100 "
                                     "webshop purchases, from the tenant's feedback (docs/learning.md, KPIs).")
    kpi.add_argument("--tenant", required=True, metavar="NAME")
    kpi.add_argument("--since", type=_day, metavar="DATE", help="from (default: the first event)")
    kpi.add_argument("--until", type=_day, metavar="DATE", help="to, not included (default: now)")
    kpi.add_argument("--by", choices=KPI_GROUPS, help="one row per category, brand, store or A/B arm")
    kpi.add_argument("--per", choices=KPI_PERIODS, help="one row per day, week or month")
    kpi.set_defaults(func=cmd_kpis)


def add_quality_command(catalog_commands) -> None:
    """`footfit catalog quality`, among the catalogue's commands (`catalog_commands`: their sub-parsers)."""
    quality = catalog_commands.add_parser(
        "quality", help="shoes whose feedback disagrees with their interior",
        description="The size runs whose customers' feedback disagrees most with their interior as the matcher "
                    "reads it (a scan or grading error), strongest evidence first, from the learned state in use.")
    quality.add_argument("--tenant", metavar="NAME", help="with learning per tenant: whose learned state")
    quality.add_argument("--limit", type=int, default=50, metavar="N")
    quality.set_defaults(func=cmd_catalog_quality)
