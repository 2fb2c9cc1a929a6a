"""The product-file reader (shoe_db/product_file.py) fuzzed with hypothesis: whatever a CSV or JSONL file holds,
reading it raises nothing but CatalogError (the whole file refused) and otherwise gives checked rows and row
errors; an import that is refused, the operator's or a tenant's, leaves the database exactly as it was."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from api import tenancy
from api.auth import Principal
from api.catalog_upload import import_assortment
from api.db import open_service_db
from api.repository import Repository
from core.errors import CatalogError, InvalidInput
from shoe_db.importer import import_catalogue, import_products
from shoe_db.models import CATEGORIES, GENDERS, LEVELS
from shoe_db.product_file import COLUMNS, AssortmentRow, ProductRow, parse_assortment, parse_products
from testing.api_world import catalogue_files

TABLES = ("brand", "shoe_model", "size_variant", "interior", "interior_scan", "store", "stock", "assortment_item")
GENERATED = list(csv.DictReader(io.StringIO(catalogue_files().read_text())))
# cells a product file may well hold, cells it should never hold, and anything at all
LIKELY = {column: sorted({row[column] for row in GENERATED}) for column in COLUMNS} | {
    "category": list(CATEGORIES), "gender": list(GENDERS), "level": list(LEVELS), "width": ["", "wide", "WIDE"],
    "price": ["129.95", "0", "12,50", "1000000", "1000000.01"], "currency": ["", "EUR", "gbp"],
    "stock": ["", "STORE-S=3", "STORE-S=0;STORE-S=2", "ELSEWHERE=1"]}
NASTY = ["", " ", "\x00", "\t", "\ud800", "42 1/0", "42 1/3", "1e999999", "-1", "NaN", "Infinity", "٤٢", "²",
         "x" * 300, "EUR\n", "a=b=c", ";;", "=", "S=1.5", "S=" + "9" * 5000, "9" * 5000, '"', "\r\n", ","]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                max_size=3), max_leaves=6)


def _cell(column: str, jsonl: bool):
    cells = st.sampled_from(LIKELY[column]) | st.sampled_from(NASTY) | st.text(max_size=20)
    return cells | JSON if jsonl else cells


def _rows(jsonl: bool):
    """Rows of the generated catalogue (so some name its sizes) or of nothing, with likely, nasty or random cells."""
    changes = st.fixed_dictionaries({}, optional={c: _cell(c, jsonl) for c in COLUMNS})
    row = st.builds(lambda base, changed: {**base, **changed}, st.sampled_from(GENERATED) | st.just({}), changes)
    return st.lists(row, max_size=6)


@st.composite
def product_files(draw) -> tuple[str, str]:
    """(file name, text) of a CSV or JSONL product file, mostly well-formed, sometimes not at all."""
    kind = draw(st.sampled_from(["csv", "jsonl", "garbage.csv", "garbage.jsonl"]))
    if kind.startswith("garbage"):
        return kind, draw(st.text(max_size=200))
    rows = draw(_rows(kind == "jsonl"))
    if kind == "jsonl":
        return "products.jsonl", "".join(json.dumps(row) + "\n" for row in rows)
    header = draw(st.sampled_from([list(COLUMNS), list(COLUMNS)[::-1], ["sku", "price", "ean"]]) |
                  st.lists(st.sampled_from(COLUMNS), max_size=8))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([row.get(column, "") for column in header] for row in rows)
    return "products.csv", out.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(product_files())
@example(("products.csv", catalogue_files().read_text().replace("AL1000-S-255,", "\ud7fc,", 1)))  # unassigned
def test_reading_any_file_refuses_it_or_gives_checked_rows(file):
    name, content = file
    for parse, row_type in ((parse_products, ProductRow), (parse_assortment, AssortmentRow)):
        try:
            parsed = parse(name, content)
        except CatalogError as refused:
            assert name in str(refused)
            continue
        assert all(isinstance(row, row_type) for row in parsed.rows)
        assert all(e.file == name and e.row >= 1 and e.column in COLUMNS + ("interior",) for e in parsed.errors)
        assert len({row.sku for row in parsed.rows}) == len(parsed.rows)
        for row in parsed.rows:
            assert row.sku and len(row.sku) <= 80 and row.sku.isprintable()
            if row_type is AssortmentRow:
                assert 0 <= row.price_cents <= 100_000_000 and all(0 <= q <= 1_000_000 for q in
                                                                    (row.stock or {}).values())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(request, tmp_path_factory):
    """An operator's interior database of the generated catalogue, and a tenant with a store, on SQLite and on
    PostgreSQL (which refuses more: NUL characters, over-long text, numbers beyond its columns)."""
    url = (f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'footfit.sqlite'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_server").new_database())
    engine = open_service_db(url)
    products = catalogue_files()
    assert import_products(products, products.parent / "interiors", engine=engine).committed
    with Session(engine, expire_on_commit=False) as session:
        tenant = tenancy.create_tenant(session, "shop", 30)
        tenancy.add_store(session, "shop", "STORE-S")
    yield engine, Principal("test", tenant.id, None, frozenset({"catalog:write"}))
    engine.dispose()


def _dump(engine) -> dict:
    with engine.connect() as conn:
        return {t: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}")).all())) for t in TABLES}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(product_files())
def test_a_refused_import_writes_nothing(shop, file):
    engine, tenant = shop
    name, content = file
    before = _dump(engine)
    try:
        committed = import_catalogue(parse_products(name, content), {}, engine=engine).committed
    except CatalogError:
        committed = False
    if not committed:
        assert _dump(engine) == before
    before = _dump(engine)
    with Session(engine, expire_on_commit=False) as session:
        try:
            committed = import_assortment(Repository(session, tenant), name, content, False).committed
        except (CatalogError, InvalidInput):
            committed = False
    if not committed:
        assert _dump(engine) == before
