"""Import the operator's interior database from a product file and interior scans: check everything, then upsert
by SKU. Brands, models, sizes, interiors and grading are written here; prices and stock are each retailer's and
never are (a retailer imports them as its assortment: api/catalog_upload.py).

All rows are checked and all interiors measured before the database is touched; the writes happen in one
transaction. With any rejected row nothing is written unless `skip_invalid` is set, and then exactly the valid
rows are. Only what differs from the database is written, so importing the same files again changes nothing.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, bindparam, select

from core.errors import CatalogError, MeshError
from core.mesh import Mesh, mesh_from_bytes
from core.sizes import GIRTH_PER_WIDTH_FITTING_MM, width_steps
from fitcore.fit.ball_line import ball_girth_table, table_to_blob
from fitcore.fit.sections import sections_from_blob, sections_to_blob
from shoe_db import versions
from shoe_db.interior import Interior, ModelGrading, graded, interior_from_scan, model_grading
from shoe_db.models import Brand, Descriptors, InteriorScan, ShoeModel, SizeVariant
from shoe_db.models import Interior as InteriorRow
from shoe_db.product_file import (
    FileSummary,
    InteriorFile,
    ParsedFile,
    ProductRow,
    RowError,
    interior_files,
    read_products,
)

_CHUNK = 500  # ids per IN (...) query, well under every database's parameter limit


@dataclass
class ImportSummary(FileSummary):
    """FileSummary counting size variants (created: new to the database; updated: model, size or interior changed)
    and interiors."""

    scanned: int = 0  # rows with an interior scan file
    graded: int = 0  # interiors derived by grading (in the models this import touched)
    graded_own: int = 0  # of them, graded by their model's own grading (two or more scans of their width fitting)
    without_interior: int = 0  # size variants of models with no scan at all: the matcher cannot use them

    def written(self) -> str:
        return (f"size variants {super().written()}; interiors {self.scanned} scanned, {self.graded} graded "
                f"({self.graded_own} by their model's own grading), {self.without_interior} without interior")


@dataclass(frozen=True)
class _Scan:
    """A scanned interior as it will be stored."""

    sha256: str
    interior: Interior
    mesh: Mesh | None  # None: same file as in the database, keep the stored mesh


def import_products(products: Path, interiors: Path | None = None, *, engine: Engine,
                    skip_invalid: bool = False) -> ImportSummary:
    """Check and import a product file (CSV or JSONL) and the interior scans in `interiors` into the interior
    database of `engine` (api.db.open_service_db opens it)."""
    return import_catalogue(read_products(products), interior_files(Path(interiors) if interiors else None),
                            engine=engine, skip_invalid=skip_invalid)


def import_catalogue(products: ParsedFile, interiors: dict[str, InteriorFile], *, engine: Engine,
                     skip_invalid: bool = False) -> ImportSummary:
    """`import_products` for a product file already parsed (product_file.parse_products) and interior scans by
    slugged name (product_file.interiors_by_stem), from a folder or an upload."""
    file, rows = products.file, products.rows
    summary = ImportSummary(file=file, rows=products.row_count, warnings=list(products.warnings))
    with engine.connect() as conn:
        stored = _stored_scan_hashes(conn, [r.sku for r in rows])
    scans, scan_errors = _measure_scans(file, rows, interiors, stored)
    used = {stem for r in rows for stem in r.interior_stems()}
    rejected_rows = summary.reject(products.errors + scan_errors)
    rows = [r for r in rows if r.row not in rejected_rows]
    summary.scanned = len(scans)
    summary.warnings += [f"{scan.name} matches no SKU or brand+model+size in {file}: check its name"
                         for stem, scan in interiors.items() if stem not in used]
    if summary.errors and not skip_invalid:
        return summary
    with engine.begin() as conn:
        _Writer(conn, summary).write(rows, scans)
    summary.committed = True
    return summary


def _stored_scan_hashes(conn: Connection, skus: list[str]) -> dict[str, str]:
    variant, scan = SizeVariant.__table__, InteriorScan.__table__
    query = select(variant.c.sku, scan.c.sha256).join(scan, scan.c.size_id == variant.c.id)
    return dict(_chunked(conn, query, variant.c.sku, skus))


def _measure_scans(file: str, rows: list[ProductRow], interiors: dict[str, InteriorFile],
                   stored: dict[str, str]) -> tuple[dict[str, _Scan], list[RowError]]:
    """The interior scan of each row that has a file, measured; row errors for unusable scans."""
    scans, errors = {}, []
    for row in rows:
        scan = next((interiors[s] for s in row.interior_stems() if s in interiors), None)
        if scan is None:
            continue
        data = scan.read()
        sha = hashlib.sha256(data).hexdigest()
        if stored.get(row.sku) == sha:
            scans[row.sku] = _Scan(sha, None, None)  # interior and mesh as stored
            continue
        try:
            mesh = mesh_from_bytes(data, Path(scan.name).name)
            interior, mesh = interior_from_scan(mesh, row.nominal_foot_length_mm)
        except (CatalogError, MeshError) as exc:
            errors.append(RowError(file, row.row, "interior", f"{scan.name}: {exc}"))
            continue
        scans[row.sku] = _Scan(sha, interior, mesh)
    return scans, errors


class _Writer:
    """The upsert, table by table, inside one transaction; counts what changed."""

    def __init__(self, conn: Connection, summary: ImportSummary):
        self.conn = conn
        self.summary = summary
        self.changed: set[str] = set()  # SKUs with any change

    def write(self, rows: list[ProductRow], scans: dict[str, _Scan]) -> None:
        brand_ids = self._brand_ids({r.brand for r in rows})
        model_ids = self._upsert_models(rows, brand_ids)
        size_ids = self._upsert_variants(rows, model_ids)
        self._upsert_scans(scans, size_ids)
        self._grade(set(model_ids.values()))
        versions.count_write(self.conn, versions.CATALOGUE)
        existing = len(rows) - self.summary.created
        self.summary.updated = len(self.changed) - self.summary.created
        self.summary.unchanged = existing - self.summary.updated

    def _brand_ids(self, names: set[str]) -> dict[str, int]:
        """Ids of the named brands, inserting the missing ones."""
        table = Brand.__table__
        ids = dict(_chunked(self.conn, select(table.c.name, table.c.id), table.c.name, sorted(names)))
        missing = sorted(names - ids.keys())
        if missing:
            self.conn.execute(table.insert(), [{"name": n} for n in missing])
            ids.update(_chunked(self.conn, select(table.c.name, table.c.id), table.c.name, missing))
        return ids

    def _upsert_models(self, rows: list[ProductRow], brand_ids: dict[str, int]) -> dict[tuple[str, str], int]:
        table = ShoeModel.__table__
        wanted = {}
        for r in rows:
            wanted.setdefault(r.model_key, dict(
                brand_id=brand_ids[r.brand], code=r.model_code, name=r.model_name, category=r.category,
                gender=r.gender, use=r.use, level=r.level, season=r.season, attributes_json=r.attributes_json))
        key_of = {(v["brand_id"], v["code"]): k for k, v in wanted.items()}
        existing = {}
        for brand_id in sorted({v["brand_id"] for v in wanted.values()}):
            for record in self.conn.execute(select(table).where(table.c.brand_id == brand_id)).mappings():
                key = key_of.get((record["brand_id"], record["code"]))
                if key is not None:
                    existing[key] = dict(record)
        changed_models = {k for k, v in wanted.items() if k in existing and _differs(existing[k], v)}
        _update(self.conn, table, "id", [{**wanted[k], "id": existing[k]["id"]} for k in changed_models])
        new = [wanted[k] for k in wanted if k not in existing]
        if new:
            self.conn.execute(table.insert(), new)
        ids = {}
        for brand_id in sorted({v["brand_id"] for v in wanted.values()}):
            for record in self.conn.execute(select(table.c.id, table.c.code).where(table.c.brand_id == brand_id)):
                key = key_of.get((brand_id, record.code))
                if key is not None:
                    ids[key] = record.id
        self.changed |= {r.sku for r in rows if r.model_key in changed_models}
        return ids

    def _upsert_variants(self, rows: list[ProductRow], model_ids: dict) -> dict[str, int]:
        table = SizeVariant.__table__
        wanted = {r.sku: dict(model_id=model_ids[r.model_key], sku=r.sku, ean=r.ean, size_system=r.size_system,
                              size_label=r.size_label, size_value=r.size_value, width=r.width,
                              nominal_foot_length_mm=r.nominal_foot_length_mm) for r in rows}
        existing = {rec["sku"]: dict(rec) for rec in _chunked(self.conn, select(table), table.c.sku, list(wanted),
                                                               mappings=True)}
        changed = [sku for sku in wanted if sku in existing and _differs(existing[sku], wanted[sku])]
        _update(self.conn, table, "id", [{**wanted[s], "id": existing[s]["id"]} for s in changed])
        new = [wanted[s] for s in wanted if s not in existing]
        if new:
            self.conn.execute(table.insert(), new)
        self.summary.created = len(new)
        self.changed |= set(changed) | {v["sku"] for v in new}
        return dict(_chunked(self.conn, select(table.c.sku, table.c.id), table.c.sku, list(wanted)))

    def _upsert_scans(self, scans: dict[str, _Scan], size_ids: dict[str, int]) -> None:
        """Store new or changed scans and their interiors (as scanned); unchanged files keep what is stored."""
        scan_table, interior_table = InteriorScan.__table__, InteriorRow.__table__
        fresh = {sku: s for sku, s in scans.items() if s.mesh is not None}
        ids = [size_ids[sku] for sku in fresh]
        for table in (scan_table, interior_table):
            _delete(self.conn, table, "size_id", ids)
        if fresh:
            self.conn.execute(scan_table.insert(), [_scan_record(size_ids[sku], s) for sku, s in fresh.items()])
            self.conn.execute(interior_table.insert(),
                              [_interior_record(size_ids[sku], s.interior, None) for sku, s in fresh.items()])
        self.changed |= set(fresh)

    def _grade(self, model_ids: set[int]) -> None:
        """Give every size of the touched models without a scan an interior graded from its nearest scan, by the
        model's own grading where it has two or more scans of that scan's width fitting, else by the fixed law."""
        variants, interior_table = SizeVariant.__table__, InteriorRow.__table__
        query = (select(variants.c.id, variants.c.sku, variants.c.model_id, variants.c.width,
                        variants.c.size_system, variants.c.size_value, variants.c.nominal_foot_length_mm,
                        ShoeModel.__table__.c.category, ShoeModel.__table__.c.code)
                 .join(ShoeModel.__table__, ShoeModel.__table__.c.id == variants.c.model_id))
        by_model = defaultdict(list)
        for v in _chunked(self.conn, query, variants.c.model_id, sorted(model_ids)):
            by_model[v.model_id].append(v)
        all_ids = [v.id for vs in by_model.values() for v in vs]
        stored = {r["size_id"]: dict(r) for r in _chunked(self.conn, select(interior_table),
                                                             interior_table.c.size_id, all_ids, mappings=True)}
        inserts, updates, deletes = [], [], []
        for model_id, members in sorted(by_model.items()):
            scanned = {v.id: _interior_of(stored[v.id]) for v in members
                       if v.id in stored and stored[v.id]["source"] == "scanned"}
            own = _own_gradings(members, scanned)
            for v in members:
                if v.id in scanned:
                    continue
                if not scanned:
                    self.summary.without_interior += 1
                    if v.id in stored:
                        deletes.append(v.id)
                        self.changed.add(v.sku)
                    continue
                source = min((m for m in members if m.id in scanned), key=lambda m: _grading_distance(m, v))
                grading = own.get(source.width)
                interior = graded(scanned[source.id], _grading_length_mm(v) - _grading_length_mm(source),
                                  width_steps(source.width, v.width), GIRTH_PER_WIDTH_FITTING_MM, grading)
                record = _interior_record(v.id, interior, source.id)
                self.summary.graded += 1
                self.summary.graded_own += grading is not None
                if v.id not in stored:
                    inserts.append(record)
                elif _differs(stored[v.id], record):
                    updates.append(record)
                else:
                    continue
                self.changed.add(v.sku)
        _delete(self.conn, interior_table, "size_id", deletes)
        if inserts:
            self.conn.execute(interior_table.insert(), inserts)
        _update(self.conn, interior_table, "size_id", updates)


def _own_gradings(members: list, scanned: dict[int, Interior]) -> dict[str, ModelGrading]:
    """Per width fitting with two or more scans of the model, the model's own grading (shoe_db.interior)."""
    by_width = defaultdict(list)
    for m in members:
        if m.id in scanned:
            by_width[m.width].append((_grading_length_mm(m), scanned[m.id]))
    gradings = {width: model_grading(scans) for width, scans in by_width.items()}
    return {width: grading for width, grading in gradings.items() if grading is not None}


def _grading_length_mm(variant) -> float:
    """The foot length a size is graded for; ski boots share one shell between a whole and a half Mondopoint size."""
    if variant.category == "ski" and variant.size_system == "MP":
        cm = variant.size_value / 10.0 if variant.size_value >= 100 else variant.size_value
        return (math.floor(cm) + 0.5) * 10.0
    return variant.nominal_foot_length_mm


def _grading_distance(scanned, target) -> tuple[float, float]:
    """Grade from the scan of the same width fitting if there is one, then from the nearest length."""
    return abs(width_steps(scanned.width, target.width)), abs(_grading_length_mm(scanned) - _grading_length_mm(target))


def _interior_of(record: dict) -> Interior:
    descriptors = Descriptors.model_validate(record)
    return Interior(record["inner_length_mm"], sections_from_blob(record["sections"]), descriptors)


def _interior_record(size_id: int, interior: Interior, graded_from_id: int | None) -> dict:
    # the length as the matcher reads it (float32, shoe_db.loading), so the stored table is the one it would compute
    length_mm = np.float32(interior.descriptors.inner_length_mm).astype(np.float64)
    girths = ball_girth_table(interior.sections[None], np.array([length_mm]))[0]
    return dict(size_id=size_id, source="scanned" if graded_from_id is None else "graded",
                graded_from_id=graded_from_id, sections=sections_to_blob(interior.sections),
                ball_girths=table_to_blob(girths), **interior.descriptors.model_dump())


def _scan_record(size_id: int, scan: _Scan) -> dict:
    mesh = scan.mesh
    blob = mesh.vertices_mm.astype("<f4").tobytes() + mesh.triangles.astype("<i4").tobytes()
    return dict(size_id=size_id, sha256=scan.sha256, vertex_count=len(mesh.vertices_mm),
                triangle_count=len(mesh.triangles), mesh=blob)


def scan_mesh(record) -> Mesh:
    """The mesh of an interior_scan row (shoe frame, mm)."""
    n = record.vertex_count * 3
    data = np.frombuffer(record.mesh[: n * 4], dtype="<f4").astype(np.float64).reshape(-1, 3)
    triangles = np.frombuffer(record.mesh[n * 4:], dtype="<i4").reshape(-1, 3)
    return Mesh(data, triangles)


def _differs(stored: dict, wanted: dict) -> bool:
    return any(stored[k] != v for k, v in wanted.items())


def _update(conn: Connection, table, key: str, records: list[dict]) -> None:
    if not records:
        return
    columns = [c for c in records[0] if c != key]
    statement = table.update().where(table.c[key] == bindparam("_key")).values(
        {c: bindparam(f"_new_{c}") for c in columns})
    conn.execute(statement, [{**{f"_new_{c}": r[c] for c in columns}, "_key": r[key]} for r in records])


def chunks(values: list) -> Iterator[list]:
    """`values` a chunk at a time, for IN (...) lists well under every database's parameter limit."""
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _delete(conn: Connection, table, key: str, ids: list[int]) -> None:
    for chunk in chunks(ids):
        conn.execute(table.delete().where(table.c[key].in_(chunk)))


def _chunked(conn: Connection, query, column, values: list, mappings: bool = False):
    """Rows of `query` restricted to column IN values, a chunk of values at a time."""
    for chunk in chunks(values):
        result = conn.execute(query.where(column.in_(chunk)))
        yield from (result.mappings() if mappings else result)
