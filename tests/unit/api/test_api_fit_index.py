"""The fit index (api/fit_index.py) on SQLite and PostgreSQL, matched on a real Dask LocalCluster: a refresh indexes
every passport with the mailing filter's outcomes, then matches only what changed (a rescanned passport, a new
product); an erased passport leaves the index at once; a tenant's index is its own."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from sqlmodel import Session, select

from api.auth import Principal
from api.fit_index import RefreshReport
from api.fitting import scanned_feet
from api.models import FitIndexChunk, FitIndexColumn, PassportRecord, Tenant
from api.repository import Repository
from api.repository import fit_index as stored
from fitcore.fit.fit_index import IndexColumn, descriptors_from_blob
from fitcore.fit.mailing import mailing_outcomes
from shoe_db.importer import import_products
from testing.api_world import World, catalogue_files, import_catalogue, scan_files, world

CHUNK = 16  # passports per chunk here: 20 passports make a full chunk and a small one
PASSPORTS = 20
MODELS = 4


def refresh(w: World, tenant: str = "A") -> RefreshReport:
    with Session(w.engine) as session:
        return w.app.state.fit_index.refresh(_repo(w, session, tenant))


def _repo(w: World, session: Session, tenant: str) -> Repository:
    return Repository(session, Principal("test", _tenant_id(w, session, tenant), None, frozenset()))


def _tenant_id(w: World, session: Session, tenant: str) -> int:
    return session.exec(select(Tenant.id).where(Tenant.name == w.tenants[tenant].name)).one()


def indexed(w: World) -> dict[tuple[str, int], tuple[bool, int, int]]:
    """(passport id, model id) -> (fits, size, score) as the index holds them; no passport in two slots."""
    out, slots = {}, Counter()
    with Session(w.engine) as session:
        for chunk in session.exec(select(FitIndexChunk)).all():
            ids = json.loads(chunk.passport_ids)
            slots.update(ids)
            for c in session.exec(select(FitIndexColumn).where(FitIndexColumn.chunk_id == chunk.id)):
                fits, size, score = IndexColumn(c.model_id, c.fits, c.sizes, c.scores).outcomes(len(ids))
                out.update({(p, c.model_id): (bool(fits[i]), int(size[i]), int(score[i])) for i, p in enumerate(ids)})
    assert not [p for p, n in slots.items() if n > 1], "a passport indexed twice"
    return out


def expected(w: World, kept_descriptors: bool = False) -> dict[tuple[str, int], tuple[bool, int, int]]:
    """The mailing filter's outcomes of every stored passport, from descriptors computed here from their points
    (or, `kept_descriptors`, from those the index keeps)."""
    fitting = w.app.state.fitting
    with Session(w.engine) as session:
        fitting.sync(session.connection())
        records = session.exec(select(PassportRecord).order_by(PassportRecord.id)).all()
        kept = {}
        for chunk in session.exec(select(FitIndexChunk)).all():
            kept.update(zip(json.loads(chunk.passport_ids), descriptors_from_blob(chunk.descriptors, chunk.slots)))
    matcher = fitting.matcher()
    model_ids = np.unique(matcher.catalogue.model_ids)
    descriptors = np.stack([kept[r.id] if kept_descriptors else matcher.mailing_descriptor(scanned_feet(r))
                            for r in records])
    found = mailing_outcomes(descriptors, matcher.mailing_products(model_ids), matcher.profiles)
    return {(r.id, int(m)): (bool(found.fits[i, j]), int(found.size[i, j]) if found.fits[i, j] else 255,
                             int(found.score[i, j]) if found.fits[i, j] else 0)
            for i, r in enumerate(records) for j, m in enumerate(model_ids)}


@pytest.mark.slow
def test_a_refresh_indexes_every_passport_then_matches_only_what_changed(database_url):
    with world(database_url, batch={"chunk_passports": CHUNK}) as w:
        import_catalogue(w.engine, MODELS)
        passports = []
        for i in range(PASSPORTS):
            w.customer("A", f"C{i}")
            passports.append(w.passport("A", f"C{i}", scan_files(2 + i % 4)))

        first = refresh(w)
        assert (first.passports, first.chunks, first.matched_passports) == (PASSPORTS, 2, PASSPORTS)
        assert first.columns == 2 * MODELS
        now = indexed(w)
        assert now == expected(w)
        assert 0 < sum(fits for fits, _, _ in now.values()) < len(now)

        again = refresh(w)
        assert (again.matched_passports, again.columns, again.dropped_slots) == (0, 0, 0), "nothing changed"

        rescanned = passports[0]
        r = w.call("A", "kiosk", "PUT", f"/v1/passports/{rescanned}", files=scan_files(7).multipart())
        assert r.status_code == 200, r.text
        after = refresh(w)
        assert (after.matched_passports, after.dropped_slots) == (1, 1)
        # the full chunk lost a slot and was cut (nothing matched again); the small one took the rescanned passport
        assert after.columns == MODELS and after.passports == PASSPORTS
        assert indexed(w) == expected(w)

        erased = passports[1]
        assert w.call("A", "admin", "DELETE", f"/v1/passports/{erased}").status_code in (200, 204)
        with Session(w.engine) as session:
            assert not [c for c in session.exec(select(FitIndexChunk.passport_ids)) if erased in c], \
                "an erased passport leaves the index with its erasure"
        assert indexed(w) == expected(w)
        assert refresh(w).columns == 0

        assert refresh(w, "B").passports == 0, "tenant B's index holds none of A's passports"
        with Session(w.engine) as session:
            assert stored.size_of(_repo(w, session, "B"))[:2] == (0, 0)


@pytest.mark.slow
def test_a_new_product_is_matched_for_every_chunk_and_nothing_else(database_url):
    with world(database_url, batch={"chunk_passports": CHUNK}) as w:
        import_catalogue(w.engine, MODELS)
        for i in range(PASSPORTS):
            w.customer("A", f"C{i}")
            w.passport("A", f"C{i}", scan_files(2 + i % 4))
        assert refresh(w).columns == 2 * MODELS
        before = indexed(w)

        products = catalogue_files(MODELS + 1)  # the same four models and one more
        assert import_products(products, products.parent / "interiors", engine=w.engine).committed
        after = refresh(w)
        assert (after.matched_passports, after.columns) == (0, 2), "one new product, two chunks"
        now = indexed(w)
        assert {k: v for k, v in now.items() if k[1] <= MODELS} == before, "the other products' columns stay"
        # matched from the descriptors the index keeps: their heel signature was fitted over the catalogue as it
        # was when each passport was indexed (api/fit_index.py), so a few outcomes differ from fresh descriptors'
        assert now == expected(w, kept_descriptors=True)
        fresh = expected(w)
        assert sum(now[k][0] == fresh[k][0] for k in now) >= 0.95 * len(now)

