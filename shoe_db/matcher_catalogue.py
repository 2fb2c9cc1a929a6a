"""The whole catalogue as the matcher holds it in memory: one query, a few contiguous arrays.

sections[i] is size i's (STATIONS, 2 + ANGLES) float32 block (layout in shoe_db.sections); the other arrays
give its ids, inner length and descriptors, so filters (category, gender, stock) select rows by index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, select

from shoe_db.models import Interior, SizeVariant
from shoe_db.sections import ROW, STATIONS, sections_from_blob


@dataclass(frozen=True)
class MatcherCatalogue:
    size_ids: np.ndarray  # (n,) int64, size_variant.id
    model_ids: np.ndarray  # (n,) int64
    inner_length_mm: np.ndarray  # (n,) float32
    ball_width_mm: np.ndarray  # (n,) float32
    ball_girth_mm: np.ndarray  # (n,) float32
    sections: np.ndarray  # (n, STATIONS, ROW) float32

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.size_ids, self.model_ids, self.inner_length_mm, self.ball_width_mm,
                                      self.ball_girth_mm, self.sections))


def load_matcher_catalogue(engine: Engine) -> MatcherCatalogue:
    """Every size with an interior, ordered by size id."""
    interior, variant = Interior.__table__, SizeVariant.__table__
    query = (select(interior.c.size_id, variant.c.model_id, interior.c.inner_length_mm, interior.c.ball_width_mm,
                    interior.c.ball_girth_mm, interior.c.sections)
             .join(variant, variant.c.id == interior.c.size_id).order_by(interior.c.size_id))
    with engine.connect() as conn:
        rows = _fetch_all(conn, query)
    sections = np.empty((len(rows), STATIONS, ROW), dtype=np.float32)
    for i, row in enumerate(rows):
        sections[i] = sections_from_blob(bytes(row[5]))
    columns = list(zip(*rows)) if rows else [()] * 5
    return MatcherCatalogue(
        size_ids=np.array(columns[0], dtype=np.int64), model_ids=np.array(columns[1], dtype=np.int64),
        inner_length_mm=np.array(columns[2], dtype=np.float32), ball_width_mm=np.array(columns[3], dtype=np.float32),
        ball_girth_mm=np.array(columns[4], dtype=np.float32), sections=sections)


def _fetch_all(conn, query) -> list[tuple]:
    """All rows; on PostgreSQL in binary transfer, which moves the blobs about three times faster than hex text."""
    if conn.dialect.name != "postgresql":
        return [tuple(row) for row in conn.execute(query)]
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    with conn.connection.driver_connection.cursor(binary=True) as cursor:
        cursor.execute(sql)
        return cursor.fetchall()
