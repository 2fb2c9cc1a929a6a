"""The database's one alembic history (api/migrations), on SQLite and PostgreSQL: it makes the models' schema and
goes down and up again; a database of the two earlier histories (the catalogue's and the service's) is adopted
with its data; two processes migrating a new database at once migrate it once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Text, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import api.models  # noqa: F401  (the service's tables, and through them the catalogue's, on SQLModel.metadata)
from api import migrations
from api.db import database_url as sqlalchemy_url
from api.db import open_service_db
from fitcore.fit.ball_line import ball_girth_table
from shoe_db.loading import load_matcher_catalogue
from testing.api_world import import_catalogue

CATALOGUE = {"brand", "shoe_model", "size_variant", "interior", "interior_scan", "store", "stock"}
SERVICE = {"tenant", "tenant_store", "kiosk", "api_key", "customer", "consent", "passport", "pressure_map",
           "fit_result", "feedback", "audit_log", "mailing_job", "mailing_match", "session_token", "assortment_item",
           "learned_state", "customer_preference", "job_lease", "data_version", "scan_job", "fit_index_chunk",
           "fit_index_column"}
LEARNING = {"learned_state", "customer_preference", "job_lease"}
HEAD = ScriptDirectory(str(Path(migrations.__file__).parent)).get_current_head()


def _revision(engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE}).get_current_revision()


def test_the_history_makes_the_models_schema_and_goes_down_and_up(database_url):
    engine = open_service_db(database_url)
    assert set(inspect(engine).get_table_names()) == CATALOGUE | SERVICE | {migrations.VERSION_TABLE}
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE})
        assert [d for d in compare_metadata(context, SQLModel.metadata) if not _text_for_str(d)] == []

    migrations.downgrade(engine, "0001")
    assert set(inspect(engine).get_table_names()) == CATALOGUE | {migrations.VERSION_TABLE}
    migrations.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) == {migrations.VERSION_TABLE}
    open_service_db(database_url)  # and up again, the audit log's triggers included
    assert _revision(engine) == HEAD
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenant (name, retention_days, created_at) VALUES ('t', 1, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO audit_log (at, tenant_id, actor, action, object_type, object_id, detail) "
                          "VALUES (CURRENT_TIMESTAMP, 1, 'a', 'read', 'passport', 'x', '')"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    engine.dispose()


def _text_for_str(diff) -> bool:
    """A JSON column the migrations make TEXT where the model says plain `str`: the same column to both databases."""
    kind, *_, inspected, model = diff[0] if isinstance(diff, list) else diff
    return kind == "modify_type" and isinstance(inspected, Text) and isinstance(model, AutoString) and not model.length


@pytest.mark.parametrize("service_revision", [None, "api0001", "api0003"])
def test_a_database_of_the_two_old_histories_is_adopted_with_its_data(database_url, service_revision):
    """The old histories' scripts are this history's, so their schema is made here by this history up to the
    revision and then labelled as they labelled it: one version table each."""
    old = create_engine(sqlalchemy_url(database_url))
    migrations.upgrade(old, service_revision or "0001")
    with old.begin() as conn:
        conn.execute(text(f"DROP TABLE {migrations.VERSION_TABLE}"))
        for table, revision in (("shoe_db_alembic_version", "0001"), ("api_alembic_version", service_revision)):
            if revision:
                conn.execute(text(f"CREATE TABLE {table} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
                conn.execute(text(f"INSERT INTO {table} VALUES ('{revision}')"))
        conn.execute(text("INSERT INTO brand (id, name) VALUES (1, 'Alpina')"))
        conn.execute(text("INSERT INTO store (id, code) VALUES (1, 'STORE-01')"))
        if service_revision:
            conn.execute(text("INSERT INTO tenant (id, name, retention_days, created_at) "
                              "VALUES (1, 'shop', 30, CURRENT_TIMESTAMP)"))
            conn.execute(text("INSERT INTO tenant_store (store_id, tenant_id) VALUES (1, 1)"))
            conn.execute(text("INSERT INTO customer (id, tenant_id, loyalty_id, created_at) "
                              "VALUES ('c1', 1, 'L-1', CURRENT_TIMESTAMP)"))
    old.dispose()

    engine = open_service_db(database_url)
    tables = set(inspect(engine).get_table_names())
    assert tables == CATALOGUE | SERVICE | {migrations.VERSION_TABLE}  # the old version tables are gone
    assert _revision(engine) == HEAD
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM brand")).all() == [("Alpina",)]
        assert conn.execute(text("SELECT code FROM store")).all() == [("STORE-01",)]
        if service_revision:
            assert conn.execute(text("SELECT loyalty_id FROM customer")).all() == [("L-1",)]
            assert conn.execute(text("SELECT tenant_id, size_system FROM tenant_store")).all() == [(1, "eu")]
    engine.dispose()


def test_processes_migrating_a_new_database_at_once_migrate_it_once(database_url):
    """Each thread migrates on its own engine, as a process would: the first under the lock, the others wait and
    then find the schema at its newest."""
    engines = [create_engine(sqlalchemy_url(database_url)) for _ in range(4)]
    errors = []

    def migrate(engine) -> None:
        try:
            migrations.upgrade(engine)
        except Exception as exc:  # noqa: BLE001 (any failure is the test's finding)
            errors.append(repr(exc))

    threads = [threading.Thread(target=migrate, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engines[0].connect() as conn:
        assert conn.execute(text(f"SELECT version_num FROM {migrations.VERSION_TABLE}")).all() == [(HEAD,)]
    for engine in engines:
        engine.dispose()


def test_passports_stored_with_unknown_fields_keep_only_a_passports_fields(database_url):
    """Revision 0008: uploads used to keep unknown fields (personal data among them); now refused, so the stored
    ones are stripped and load again. A passport the product wrote is left as it was."""
    from fitcore.scan.passport import Passport
    from testing.api_world import scan_files

    written = json.loads(scan_files().passport)
    stuffed = json.loads(scan_files().passport)
    stuffed["owner"] = {"name": "Ann Example", "email": "ann@example.org"}
    stuffed["feet"]["left"]["quality"]["notes"] = "x" * 1000
    stuffed["feet"]["left"]["quality"]["reasons"] = ["r" * 900] * 40
    engine = create_engine(sqlalchemy_url(database_url))
    migrations.upgrade(engine, "0007")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenant (id, name, retention_days, created_at) "
                          "VALUES (1, 'shop', 30, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO customer (id, tenant_id, loyalty_id, created_at) "
                          "VALUES ('c1', 1, 'L-1', CURRENT_TIMESTAMP)"))
        for passport_id, passport in (("p1", written), ("p2", stuffed)):
            conn.execute(text("INSERT INTO passport (id, tenant_id, customer_id, source, passport_json, left_points, "
                              "right_points, created_at, updated_at, scanned_at) VALUES (:id, 1, 'c1', 'upload', "
                              ":json, :points, :points, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                         {"id": passport_id, "json": json.dumps(passport), "points": b""})
    migrations.upgrade(engine)
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, passport_json FROM passport")).all())
    engine.dispose()
    assert json.loads(stored["p1"]) == written
    kept = Passport.from_json(stored["p2"])  # loads again
    assert "Ann" not in stored["p2"] and "notes" not in stored["p2"]
    assert len(kept.feet.left.quality.reasons) == 16 and all(len(r) == 500 for r in kept.feet.left.quality.reasons)


def test_feedback_stored_before_0009_stays_readable_and_gains_its_source(database_url):
    """Revision 0009: older events get the source their recording key stood for (a store's key: store) and their
    storing time as the time they happened; on the way down the events the old service cannot read become what it
    can (exchanged -> returned, none_given -> other) or go (kept)."""
    engine = create_engine(sqlalchemy_url(database_url))
    migrations.upgrade(engine, "0008")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenant (id, name, retention_days, created_at) "
                          "VALUES (1, 'shop', 30, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO store (id, code) VALUES (1, 'STORE-01')"))
        conn.execute(text("INSERT INTO brand (id, name) VALUES (1, 'Alpina')"))
        conn.execute(text("INSERT INTO shoe_model (id, brand_id, code, name, category, gender, use, level, season, "
                          "attributes_json) VALUES (1, 1, 'M1', 'Model', 'walking', 'unisex', '', '', '', '{}')"))
        conn.execute(text("INSERT INTO size_variant (id, model_id, sku, ean, size_system, size_label, size_value, "
                          "width, nominal_foot_length_mm) VALUES (1, 1, 'SKU-1', '', 'eu', '42', 42, 'standard', "
                          "265)"))
        for key_id, store_id in (("kioskkey", 1), ("shopkey", None)):
            conn.execute(text("INSERT INTO api_key (id, tenant_id, store_id, scopes, secret_sha256, label, "
                              "created_at, expires_at) VALUES (:id, 1, :store, 'feedback:write', 'x', '', "
                              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"id": key_id, "store": store_id})
        conn.execute(text("INSERT INTO customer (id, tenant_id, loyalty_id, created_at) "
                          "VALUES ('c1', 1, 'L-1', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO passport (id, tenant_id, customer_id, source, passport_json, left_points, "
                          "right_points, created_at, updated_at, scanned_at) VALUES ('p1', 1, 'c1', 'upload', '{}', "
                          ":points, :points, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                     {"points": b""})
        for event, reason, store_id, key_id in (("tried", None, 1, "kioskkey"), ("returned", "too_small", 1, "shopkey"),
                                                ("bought", None, None, "gone")):
            conn.execute(text("INSERT INTO feedback (passport_id, event, size_id, reason, store_id, recorded_at, "
                              "recorded_by) VALUES ('p1', :event, 1, :reason, :store, '2026-03-01 10:00:00', :key)"),
                         {"event": event, "reason": reason, "store": store_id, "key": key_id})
    migrations.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event, source, kept, complaint_region, recommended_size_id, occurred_at, "
                                 "recorded_at FROM feedback ORDER BY id")).all()
    assert [(r.event, r.source) for r in rows] == [("tried", "store"), ("returned", "webshop"),
                                                   ("bought", "webshop")]  # a key since deleted: not a store's
    assert all(r.kept is None and r.complaint_region is None and r.recommended_size_id is None for r in rows)
    assert all(r.occurred_at == r.recorded_at for r in rows)

    with engine.begin() as conn:
        for event, reason in (("kept", None), ("exchanged", "none_given")):
            conn.execute(text("INSERT INTO feedback (passport_id, event, size_id, reason, source, occurred_at, "
                              "recorded_at, recorded_by) VALUES ('p1', :event, 1, :reason, 'webshop', "
                              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'shopkey')"), {"event": event, "reason": reason})
    migrations.downgrade(engine, "0008")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT event, reason FROM feedback ORDER BY id")).all() == [
            ("tried", None), ("returned", "too_small"), ("bought", None), ("returned", "other")]
        assert "source" not in {c["name"] for c in inspect(conn).get_columns("feedback")}
    engine.dispose()


def test_learning_tables_come_with_the_learning_lease_and_go_without_touching_feedback(database_url):
    """Revision 0010: the learned states, the customers' preferences and the job lease, whose learning row is there
    from the start (the lease is taken by an UPDATE); down again, only they go."""
    engine = create_engine(sqlalchemy_url(database_url))
    migrations.upgrade(engine, "0009")
    assert not LEARNING & set(inspect(engine).get_table_names())
    migrations.upgrade(engine)
    assert LEARNING <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, holder, finished_at FROM job_lease")).all() == [("learning", None, None)]
    migrations.downgrade(engine, "0009")
    tables = set(inspect(engine).get_table_names())
    assert not LEARNING & tables and "feedback" in tables
    engine.dispose()


def test_interiors_stored_before_0012_get_the_ball_line_tables_the_matcher_would_compute(database_url):
    """The importer stores each interior's table; a database migrated from before 0012 gets the same tables
    computed for its stored interiors; either way the matcher reads exactly what it would compute."""
    engine = open_service_db(database_url)
    import_catalogue(engine, models=2)
    imported = load_matcher_catalogue(engine)
    computed = ball_girth_table(imported.sections, imported.inner_length_mm.astype(np.float64))
    assert np.array_equal(imported.ball_girths_mm, computed), "the importer stores what the matcher computes"

    migrations.downgrade(engine, "0011")
    assert "ball_girths" not in {c["name"] for c in inspect(engine).get_columns("interior")}
    migrations.upgrade(engine)
    migrated = load_matcher_catalogue(engine)
    assert np.array_equal(migrated.ball_girths_mm, computed) and len(computed) == len(imported.size_ids) > 10
    engine.dispose()
