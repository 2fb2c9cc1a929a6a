"""The fit index of a tenant's passports (fitcore/fit/fit_index.py): kept up to date by `refresh`, read by `matches`.

A mailing job refreshes the tenant's index, then reads its products' fits bits, joined with the audience (the
newest passport of each customer with marketing consent in force): a lookup, not a match of every passport. A
refresh matches only what changed since the last:

- passports new since, or rescanned since their chunk was read, get descriptors (from their points, here) and are
  matched against every product in new chunks; their old slots are dropped;
- erased passports' slots are dropped (api/privacy.py drops them at once: fit_index_rows.drop_passports);
- a chunk left with fewer than half its passports is dissolved into the new chunks (its descriptors carried over);
- per chunk, products whose column was matched against another version of the product or of the fit profiles are
  matched again; a chunk whose learning arm is now decided otherwise (another learned state in use, or the
  passports' advice arms changed) is matched again whole; a removed product's columns go.

The matching runs on Dask (api/batch.py): per group of chunks needing the same products, the products' layout
scattered once and one task per chunk; each chunk's columns are stored as its result arrives, so a refresh that
stops part way keeps what it finished. Erased passports never reach the index again; a passport rescanned during
a refresh is matched at the next.

Descriptors are kept with the chunk: a catalogue change re-matches columns from them without reading the
passports' points again. The descriptor's heel signature is fitted over the catalogue's sizes near the foot's
length (Matcher.mailing_descriptor); a refresh keeps it as it was when the passport was indexed, so after a
catalogue change a kept descriptor may differ slightly from one computed anew.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from api.batch import Batch
from api.fitting import Fitting, scanned_feet
from api.learning import InUse, Learning
from api.models import as_utc, utc_now
from api.repository import Repository, passports
from api import fit_index_rows as rows
from api.repository import fit_index as stored
from fitcore.fit.advice import LEARNING, advice_arm
from fitcore.fit.fit_index import ChunkWork, IndexColumn, ProductLayout, chunk_columns, product_versions
from fitcore.fit.mailing import LearnedMailing
from fitcore.fit.matcher import Matcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh did."""

    passports: int  # in the index after it
    chunks: int
    matched_passports: int  # new or rescanned passports given descriptors and matched against every product
    dropped_slots: int  # slots of erased, rescanned or twice-indexed passports
    columns: int  # (chunk, product) columns matched
    removed_columns: int  # of products no longer in the catalogue


@dataclass(frozen=True)
class Audience:
    """What a mailing reads from the index: per product, the passports it fits (places in `passport_ids`)."""

    passport_ids: list[str]
    fits: dict[int, np.ndarray]  # model id -> int64 places

    def by_product(self) -> Iterator[tuple[int, list[str]]]:
        """Per product (model id), the passport ids it fits."""
        for model_id, places in self.fits.items():
            yield model_id, [self.passport_ids[i] for i in places.tolist()]


@dataclass
class _Pending:
    """A chunk to match: where its columns go and which products it needs."""

    chunk_id: int
    work: ChunkWork
    model_ids: tuple[int, ...]


class _Steps:
    """A refresh's progress: its steps (a chunk's worth of descriptors, a chunk matched) done of all."""

    def __init__(self, report: Callable[[float], None], total: int):
        self.report, self.total, self.count = report, max(total, 1), 0

    def done(self) -> None:
        self.count += 1
        self.report(min(self.count / self.total, 1.0))


class FitIndex:
    def __init__(self, fitting: Fitting, learning: Learning, batch: Batch, chunk_passports: int):
        self.fitting, self.learning, self.batch, self.chunk_passports = fitting, learning, batch, chunk_passports

    def refresh(self, repo: Repository, progress: Callable[[float], None] = lambda share: None,
                should_stop: Callable[[], bool] = lambda: False) -> RefreshReport:
        """Bring the tenant's index up to date (see the module docstring); progress(share done) after each step
        (a chunk's worth of descriptors, a chunk matched); stops with BatchCancelled when should_stop() says so."""
        self.fitting.sync(repo.session.connection())
        matcher = self.fitting.matcher()
        model_ids = np.unique(matcher.catalogue.model_ids)
        product_version = dict(zip(model_ids.tolist(), product_versions(matcher.mailing_products(model_ids),
                                                                         matcher.profiles)))
        in_use = self.learning.in_use(repo.session, self.learning.scope(repo.tenant_id))
        decision = f"{in_use.version}:{self.learning.settings.fits_keep_chance}" if in_use.learned else ""
        share = self.learning.settings.ab_holdout_share
        as_of = utc_now()
        live = {p.id: p for p in stored.live_passports(repo)}

        def learning_arm(passport_ids: list[str]) -> np.ndarray:
            return np.array([advice_arm(repo.tenant_id, live[p].customer_id, share) == LEARNING
                             for p in passport_ids], dtype=bool)

        pending: list[_Pending] = []
        carried: list[tuple[str, np.ndarray]] = []  # (passport id, descriptor) of dissolved chunks
        indexed: set[str] = set()
        dropped = removed = 0
        for chunk in stored.chunks(repo):
            keep = [i for i, p in enumerate(chunk.passport_ids)
                    if p in live and as_utc(live[p].updated_at) <= as_utc(chunk.as_of) and p not in indexed]
            indexed.update(chunk.passport_ids[i] for i in keep)
            dropped += len(chunk.passport_ids) - len(keep)
            if len(keep) < len(chunk.passport_ids):
                if len(keep) < self.chunk_passports // 2:
                    rows.remove_chunk(repo.session, chunk.id)
                    carried += [(chunk.passport_ids[i], chunk.descriptors[i]) for i in keep]
                    continue
                chunk = rows.rewrite(repo.session, chunk, keep)
            arm = learning_arm(chunk.passport_ids)
            if chunk.decision != decision or not np.array_equal(arm, chunk.learning_arm):
                # decided otherwise now: a new chunk of the same passports, without columns (a refresh that stops
                # part way leaves no column made with the old decision looking current)
                rows.remove_chunk(repo.session, chunk.id)
                chunk = rows.add_chunk(repo.session, repo.tenant_id, chunk.passport_ids, chunk.descriptors, arm,
                                         decision, chunk.as_of)
            have = stored.column_versions(repo, chunk.id)
            gone = set(have) - set(product_version)
            if gone:
                stored.remove_columns(repo, chunk.id, gone)
                removed += len(gone)
            stale = tuple(m for m, v in product_version.items() if have.get(m) != v)
            if stale:
                pending.append(_Pending(chunk.id, ChunkWork(chunk.descriptors, arm), stale))
        repo.session.commit()

        new = sorted(set(live) - indexed)
        entries = len(carried) + len(new)
        steps = _Steps(progress, -(-len(new) // self.chunk_passports) + len(pending)
                       + -(-entries // self.chunk_passports))
        described = carried + list(zip(new, self._descriptors(repo, matcher, new, steps)))
        for start in range(0, len(described), self.chunk_passports):
            part = described[start:start + self.chunk_passports]
            ids = [p for p, _ in part]
            descriptors = np.stack([d for _, d in part])
            arm = learning_arm(ids)
            chunk = rows.add_chunk(repo.session, repo.tenant_id, ids, descriptors, arm, decision, as_of)
            pending.append(_Pending(chunk.id, ChunkWork(descriptors, arm), tuple(product_version)))
        repo.session.commit()

        columns = self._match(repo, matcher, in_use, pending, product_version, steps, should_stop)
        chunks, slots, _ = stored.size_of(repo)
        return RefreshReport(slots, chunks, len(new), dropped, columns, removed)

    def _descriptors(self, repo: Repository, matcher: Matcher, passport_ids: list[str],
                     steps: _Steps) -> list[np.ndarray]:
        """The mailing descriptors of these passports, read from their points a chunk's worth at a time."""
        out = []
        for start in range(0, len(passport_ids), self.chunk_passports):
            part = passport_ids[start:start + self.chunk_passports]
            records = {r.id: r for r in passports.by_ids(repo, part)}
            out += [matcher.mailing_descriptor(scanned_feet(records[p])) for p in part]
            steps.done()
        return out

    def _match(self, repo: Repository, matcher: Matcher, in_use: InUse, pending: list[_Pending],
               product_version: dict[int, str], steps: _Steps, should_stop: Callable[[], bool]) -> int:
        """Match every pending chunk on the cluster, per group needing the same products; store each chunk's
        columns as they arrive. Returns the columns stored."""
        groups: dict[tuple[int, ...], list[_Pending]] = defaultdict(list)
        for p in pending:
            groups[p.model_ids].append(p)
        stored_columns = 0
        for model_ids, group in groups.items():
            products = matcher.mailing_products(list(model_ids))
            learned = (LearnedMailing.of(in_use.state, matcher.catalogue, products, matcher.profiles,
                                         self.learning.settings.fits_keep_chance) if in_use.learned else None)
            layout = ProductLayout(products, matcher.profiles, learned)

            def store(i: int, columns: list[IndexColumn], group: list[_Pending] = group) -> None:
                nonlocal stored_columns
                rows.put_columns(repo.session, group[i].chunk_id, columns, product_version)
                repo.session.commit()
                stored_columns += len(columns)
                steps.done()

            self.batch.map(chunk_columns, [p.work for p in group], layout, store, should_stop)
        return stored_columns


def matches(repo: Repository, model_ids: list[int], audience: set[str]) -> Audience:
    """Per product, the passports among `audience` it fits, as the tenant's index says (refresh it first)."""
    passport_ids: list[str] = []
    chunks: dict[int, tuple[int, np.ndarray]] = {}  # chunk id -> (its first slot's place, slots in the audience)
    found: dict[int, list[np.ndarray]] = {m: [] for m in model_ids}
    for chunk_id, model_id, ids, bits in stored.fits_bits(repo, model_ids):
        if chunk_id not in chunks:
            chunks[chunk_id] = (len(passport_ids), np.array([p in audience for p in ids], dtype=bool))
            passport_ids += ids
        first, members = chunks[chunk_id]
        fitting = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=len(ids)).astype(bool)
        found[model_id].append(first + np.flatnonzero(fitting & members))
    return Audience(passport_ids, {m: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
                                   for m, parts in found.items()})
