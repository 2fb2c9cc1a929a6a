"""KPIs of the advice per tenant over time (GET /v1/kpis, `footfit kpis`): how often the first size a store
customer tries is kept, how many webshop purchases go back for size, how many are exchanged; by category, brand,
store or A/B arm, per day, week or month, so the uplift of learning over the holdout is measured in the field as
the benchmark measures it (docs/learning.md, "KPIs").

From the tenant's feedback events (through its Repository: another tenant's never count), each counted by when it
happened (`occurred_at`) within [since, until):
- a store visit is a customer's first try of a model on a day (UTC); first size kept = the share of visits whose
  first try was kept (tries posted without saying whether they were kept are left out);
- purchases are `bought` events; returns are `returned` and `exchanged` events; returns for size those giving
  too_small or too_large; both also per 100 purchases of the same group and period.
Counts, not people: nothing personal leaves the tenant, and reading them is not audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import select

from api.models import RETURN_EVENTS, Feedback, PassportRecord, as_utc, utc_now
from api.repository import Repository
from api.schemas import KpiRowOut, KpisOut
from core.errors import InvalidInput
from shoe_db.models import Brand, ShoeModel, SizeVariant, Store

KPI_GROUPS = ("category", "brand", "store", "arm")
KPI_PERIODS = ("day", "week", "month")
NONE = "(none)"  # the group of an event without one: a webshop event's store, an event posted without its arm
SIZE_REASONS = ("too_small", "too_large")


@dataclass
class _Counts:
    events: int = 0
    visits: int = 0
    kept_first: int = 0
    purchases: int = 0
    returns: int = 0
    returns_for_size: int = 0
    exchanges: int = 0

    def row(self, group: str, period: date | None) -> KpiRowOut:
        def per_100(n: int) -> float | None:
            return round(100.0 * n / self.purchases, 2) if self.purchases else None

        return KpiRowOut(group=group, period_start=period, events=self.events, visits=self.visits,
                         first_size_kept=round(self.kept_first / self.visits, 4) if self.visits else None,
                         purchases=self.purchases, returns=self.returns, returns_for_size=self.returns_for_size,
                         returns_for_size_per_100=per_100(self.returns_for_size), exchanges=self.exchanges,
                         exchanges_per_100=per_100(self.exchanges))


def kpis(repo: Repository, since: datetime | None = None, until: datetime | None = None, by: str | None = None,
         per: str | None = None) -> KpisOut:
    """The tenant's KPIs over [since, until) (since None: from its first event; until None: now), one row per
    group of `by` (KPI_GROUPS; None: one group, 'all') and period of `per` (KPI_PERIODS; None: the window)."""
    try:
        until = as_utc(until) if until is not None else utc_now()
        since = as_utc(since) if since is not None else None
    except OverflowError:  # a time at the calendar's edge, whose offset moves it past year 1 or 9999
        raise InvalidInput("since and until must be times within years 1-9999 in UTC",
                           [("query.since", "out of range")]) from None
    if since is not None and since >= until:
        raise InvalidInput(f"since ({since.isoformat()}) must be before until ({until.isoformat()})",
                           [("query.since", "not before until")])
    query = (select(Feedback.id, Feedback.passport_id, Feedback.event, Feedback.kept, Feedback.reason,
                    Feedback.source, Feedback.advice_arm, Feedback.occurred_at, SizeVariant.model_id,
                    ShoeModel.category, Brand.name.label("brand"), Store.code.label("store"))
             .join(PassportRecord, PassportRecord.id == Feedback.passport_id)  # the tenant's passports only
             .join(SizeVariant, SizeVariant.id == Feedback.size_id)
             .join(ShoeModel, ShoeModel.id == SizeVariant.model_id)
             .join(Brand, Brand.id == ShoeModel.brand_id)
             .outerjoin(Store, Store.id == Feedback.store_id)
             .where(Feedback.occurred_at < until)
             .order_by(Feedback.occurred_at, Feedback.id))
    if since is not None:
        query = query.where(Feedback.occurred_at >= since)
    counts: dict[tuple[date | None, str], _Counts] = {}
    first_tries: set[tuple[str, int, date]] = set()
    for e in repo.session.exec(query):
        at = as_utc(e.occurred_at)
        group = "all" if by is None else {"category": e.category, "brand": e.brand, "store": e.store,
                                          "arm": e.advice_arm}[by] or NONE
        c = counts.setdefault((_period(at, per), group), _Counts())
        c.events += 1
        if e.event == "tried" and e.source == "store" and e.kept is not None:
            visit = (e.passport_id, e.model_id, at.date())
            if visit not in first_tries:
                first_tries.add(visit)
                c.visits += 1
                c.kept_first += bool(e.kept)
        elif e.event == "bought":
            c.purchases += 1
        elif e.event in RETURN_EVENTS:
            c.returns += 1
            c.returns_for_size += e.reason in SIZE_REASONS
            c.exchanges += e.event == "exchanged"
    rows = [c.row(group, period) for (period, group), c in sorted(
        counts.items(), key=lambda item: (item[0][0] or date.min, item[0][1]))]
    return KpisOut(since=since, until=until, by=by, per=per, rows=rows)


def _period(at: datetime, per: str | None) -> date | None:
    """The first day of the period `at` falls in (None: the whole window)."""
    if per is None:
        return None
    day = at.date()
    if per == "week":
        return day - timedelta(days=day.weekday())
    if per == "month":
        return day.replace(day=1)
    return day
