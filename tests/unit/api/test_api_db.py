"""The service's SQLite database under concurrent writers (api/db.py WriterQueue): every writer gets through,
in turn, and a transaction that ends any way (commit, rollback, a connection given back unfinished) lets the
next writer in at once."""

from __future__ import annotations

import threading

from sqlalchemy import text

from api.db import WriterQueue, open_service_db

WRITERS = 8
ROWS_EACH = 25


def _engine(tmp_path):
    engine = open_service_db(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (writer INTEGER, n INTEGER)"))
    return engine


def test_concurrent_writers_all_get_through_in_turn(tmp_path):
    engine = _engine(tmp_path)
    errors = []

    def write(writer: int) -> None:
        try:
            for n in range(ROWS_EACH):
                with engine.begin() as conn:  # one transaction per row: many turns at the lock
                    conn.execute(text("INSERT INTO t VALUES (:w, :n)"), {"w": writer, "n": n})
                    conn.execute(text("UPDATE t SET n = n WHERE writer = :w"), {"w": writer})
        except Exception as e:  # noqa: BLE001 (any failure is the test's finding)
            errors.append(repr(e))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == WRITERS * ROWS_EACH


def test_a_transaction_that_ends_without_commit_lets_the_next_writer_in(tmp_path):
    engine = _engine(tmp_path)
    with engine.connect() as conn:  # rolled back
        conn.execute(text("INSERT INTO t VALUES (1, 1)"))
        conn.rollback()
    conn = engine.connect()  # given back to the pool mid-write
    conn.execute(text("INSERT INTO t VALUES (2, 2)"))
    conn.close()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (3, 3)"))
        assert conn.info[WriterQueue.KEY] is True  # it got the lock (not, after the queue's wait, SQLite's own)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT writer FROM t")).scalars().all() == [3]
