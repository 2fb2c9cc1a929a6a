"""The product-data format: one row per size variant, CSV or JSON Lines (docs/catalog.md), read two ways.

The operator's interior database reads each row's model and size (`parse_products`); a retailer's assortment
reads the retailer's SKU, the operator's size it sells (brand + model code + size system + size + width, or the
size's EAN), its price and its stock (`parse_assortment`). One file may serve both, as a supplier's file or the
synthetic catalogue does: each reading checks only the columns it reads and warns that it left the others alone.
Errors name the file, the row, the column and the fix; a cell the database could not store (too long, control
characters, an amount beyond any shoe's) is refused like any other bad cell. Nothing here touches the database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

from core.errors import CatalogError
from core.mesh import MESH_SUFFIXES
from core.sizes import SIZE_SYSTEMS, parse_size_label, size_system, width_fitting
from shoe_db.models import CATEGORIES, GENDERS, LEVELS, Brand, ShoeModel, SizeVariant, Store

COLUMNS = ("sku", "ean", "brand", "model_code", "model_name", "category", "gender", "use", "level", "width",
           "price", "currency", "season", "size_system", "size", "stock", "attributes")
# the operator's interior database: models and their sizes
PRODUCT_COLUMNS = ("sku", "ean", "brand", "model_code", "model_name", "category", "gender", "use", "level", "width",
                   "season", "size_system", "size", "attributes")
REQUIRED = ("sku", "brand", "model_code", "model_name", "category", "gender", "size_system", "size")
MODEL_COLUMNS = ("model_name", "category", "gender", "use", "level", "season", "attributes")
# a retailer's assortment: its SKU of one of the operator's sizes (named by these + width, or by EAN), price, stock
SIZE_COLUMNS = ("brand", "model_code", "size_system", "size")
ASSORTMENT_COLUMNS = ("sku", "ean", *SIZE_COLUMNS, "width", "price", "currency", "stock")
ASSORTMENT_REQUIRED = ("sku", "price")
MAX_PRICE = Decimal("1000000")  # no shoe costs more; the database keeps cents in 32 bits
MAX_QUANTITY = 1_000_000
_LENGTHS = {name: column.type.length for name, column in (
    ("sku", SizeVariant.__table__.c.sku), ("brand", Brand.__table__.c.name), ("model_code", ShoeModel.__table__.c.code),
    ("model_name", ShoeModel.__table__.c.name), ("use", ShoeModel.__table__.c.use),
    ("season", ShoeModel.__table__.c.season), ("size", SizeVariant.__table__.c.size_label),
    ("store", Store.__table__.c.code))}
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class RowError:
    file: str
    row: int  # CSV: spreadsheet row (1 = header); JSONL: line number
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}, row {self.row}, column {self.column}: {self.message}"


class SizeKey(NamedTuple):
    """One of the operator's sizes as a product file names it."""

    brand: str
    model_code: str
    size_system: str  # core.sizes code: EU, UK, US-M, US-W, MP
    size_value: float  # the label as a number, rounded as stored
    width: str


@dataclass(frozen=True)
class ProductRow:
    """One size variant of the operator's interior database as the product file gives it, checked."""

    row: int
    sku: str
    ean: str
    brand: str
    model_code: str
    model_name: str
    category: str
    gender: str
    use: str
    level: str
    width: str
    season: str
    size_system: str
    size_label: str
    size_value: float
    nominal_foot_length_mm: float
    attributes_json: str

    @property
    def model_key(self) -> tuple[str, str]:
        return self.brand, self.model_code

    @property
    def size_key(self) -> SizeKey:
        return SizeKey(self.brand, self.model_code, self.size_system, self.size_value, self.width)

    def interior_stems(self) -> tuple[str, str]:
        """The file names (without suffix) an interior scan of this variant may have: by SKU, by model+size."""
        width = "" if self.width == "standard" else f" {self.width}"
        return slug(self.sku), slug(f"{self.brand} {self.model_code} {self.size_system} {self.size_label}{width}")


@dataclass(frozen=True)
class AssortmentRow:
    """One SKU of a retailer's assortment as its product file gives it, checked: the operator's size it sells
    (`size`, or None when the row names it by EAN alone), its price and its stock in the retailer's stores."""

    row: int
    sku: str
    ean: str
    size: SizeKey | None
    size_label: str
    price_cents: int
    currency: str
    stock: dict[str, int] | None  # None: the file says nothing about stock, keep what the database has

    def names(self) -> str:
        """The operator's size this row names, as messages say it."""
        if self.size is None:
            return f"the size with EAN {self.ean}"
        s = self.size
        return f"{s.brand} {s.model_code} size {s.size_system} {self.size_label} ({s.width})"


@dataclass(frozen=True)
class ParsedFile:
    """A product file as read: the valid rows, the errors of the others (duplicates and conflicts included) and
    warnings about columns this reading left alone."""

    file: str
    rows: list
    errors: list[RowError]
    warnings: list[str] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.rows) + len({e.row for e in self.errors})


@dataclass
class FileSummary:
    """What importing one product file did (or would have done: nothing is written while a row is rejected,
    unless the valid rows are imported anyway)."""

    file: str
    rows: int = 0
    rejected: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    committed: bool = False
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.rows - self.rejected

    def reject(self, errors: list[RowError]) -> set[int]:
        """Record the row errors; the rows they reject."""
        self.errors = sorted(errors, key=lambda e: (e.row, e.column))
        rejected = {e.row for e in errors}
        self.rejected = len(rejected)
        return rejected

    def written(self) -> str:
        """What the import changed, in words."""
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"

    def report(self) -> str:
        lines = [str(e) for e in self.errors] + [f"warning: {w}" for w in self.warnings]
        if self.committed:
            lines.append(f"{self.file}: {self.accepted} rows accepted, {self.rejected} rejected; {self.written()}")
        else:
            lines.append(f"{self.file}: nothing imported: {self.rejected} of {self.rows} rows rejected; fix the "
                         f"errors above, or pass --skip-invalid to import the {self.accepted} valid rows")
        return "\n".join(lines)


def slug(text: str) -> str:
    """Lower case, every run of characters other than letters, digits and dots replaced by one '-'."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def read_text(path: Path) -> str:
    """The text of a product file on disk (UTF-8, a byte-order mark allowed)."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"no product file at {path}: check the path")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogError(f"{path} is not UTF-8 text: save it as UTF-8") from None


def read_products(path: Path) -> ParsedFile:
    """`parse_products` of a product file on disk."""
    return parse_products(Path(path).name, read_text(path))


def parse_products(file: str, text: str) -> ParsedFile:
    """The operator's reading of a product file called `file` (its suffix gives the format): models and sizes."""
    return _parse(file, text, REQUIRED, _product_row, _consistent, PRODUCT_COLUMNS,
                  "they are each retailer's own, imported as its assortment (POST /v1/catalog/import, or footfit "
                  "catalog import --tenant NAME)")


def parse_assortment(file: str, text: str) -> ParsedFile:
    """A retailer's reading of a product file called `file`: its SKUs of the operator's sizes, prices, stock."""
    return _parse(file, text, ASSORTMENT_REQUIRED, _assortment_row, _one_sku_per_size, ASSORTMENT_COLUMNS,
                  "models, names and interiors are the operator's interior database, shared by every retailer; "
                  "an assortment sets only its SKUs, prices and stock")


def _parse(file: str, text: str, required: tuple[str, ...], parse_row: Callable, distinct: Callable,
           columns: tuple[str, ...], why_not_read: str) -> ParsedFile:
    rows, errors, given = [], [], set()
    for row_no, raw in _raw_rows(file, text, required):
        given |= {c for c in COLUMNS if _text(raw.get(c))}
        row, row_errors = parse_row(file, row_no, raw)
        errors.extend(row_errors)
        if row is not None:
            rows.append(row)
    kept, conflicts = distinct(file, rows)
    left_alone = [c for c in COLUMNS if c in given and c not in columns]
    warnings = [f"{file}: the column(s) {', '.join(left_alone)} were not read: {why_not_read}"] if left_alone else []
    return ParsedFile(file, kept, sorted(errors + conflicts, key=lambda e: e.row), warnings)


def _raw_rows(file: str, text: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    suffix = Path(file).suffix
    if suffix.lower() == ".csv":
        yield from _csv_rows(file, text, required)
    elif suffix.lower() in (".jsonl", ".ndjson"):
        yield from _jsonl_rows(file, text)
    else:
        raise CatalogError(f"{file}: unknown product file type {suffix!r}: give a .csv or .jsonl file")


def _csv_rows(file: str, text: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
        _check_header(file, header, required)
        reader.fieldnames = header
        for index, raw in enumerate(reader):
            yield index + 2, raw
    except csv.Error as exc:
        raise CatalogError(f"{file}, row {reader.line_num}: not CSV ({exc}): save the file as CSV (comma-separated, "
                           f"UTF-8) with one product per row") from None


def _jsonl_rows(file: str, text: str) -> Iterator[tuple[int, dict]]:
    for line_no, line in enumerate(io.StringIO(text, newline=None), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except (ValueError, RecursionError) as exc:  # ValueError: also a number of more than 4,300 digits
            raise CatalogError(f"{file}, row {line_no}: not a JSON object ({getattr(exc, 'msg', exc)}): one "
                               f"product per line as a JSON object") from None
        if not isinstance(raw, dict):
            raise CatalogError(f"{file}, row {line_no}: a JSON {type(raw).__name__}, not an object: "
                               f"one product per line as a JSON object")
        yield line_no, raw


def _check_header(file: str, header: list[str], required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise CatalogError(f"{file}: the header lacks the column(s) {', '.join(missing)}: the first row must "
                           f"name the columns ({', '.join(COLUMNS)})")


def _product_row(file: str, row_no: int, raw: dict) -> tuple[ProductRow | None, list[RowError]]:
    cells, errors = _cells(file, row_no, raw, PRODUCT_COLUMNS, REQUIRED)
    if errors:
        return None, errors
    return ProductRow(
        row=row_no, sku=cells["sku"], ean=cells["ean"], brand=cells["brand"], model_code=cells["model_code"],
        model_name=cells["model_name"], category=cells["category"], gender=cells["gender"], use=cells["use"],
        level=cells["level"], width=cells["width"], season=cells["season"], size_system=cells["size_system"],
        size_label=cells["size"], size_value=cells["size_value"],
        nominal_foot_length_mm=cells["nominal_foot_length_mm"], attributes_json=cells["attributes"],
    ), []


def _assortment_row(file: str, row_no: int, raw: dict) -> tuple[AssortmentRow | None, list[RowError]]:
    cells, errors = _cells(file, row_no, raw, ASSORTMENT_COLUMNS, ASSORTMENT_REQUIRED)
    if errors:
        return None, errors
    named = [c for c in SIZE_COLUMNS if cells[c]]
    if named and len(named) < len(SIZE_COLUMNS) or not named and not cells["ean"]:
        column = next(c for c in SIZE_COLUMNS if not cells[c])
        return None, [RowError(file, row_no, column, f"{column} is missing: name the operator's size by brand, "
                                                     f"model_code, size_system and size (and width), or by its EAN "
                                                     f"alone")]
    size = SizeKey(cells["brand"], cells["model_code"], cells["size_system"], cells["size_value"],
                   cells["width"]) if named else None
    return AssortmentRow(row=row_no, sku=cells["sku"], ean=cells["ean"], size=size, size_label=cells["size"],
                         price_cents=cells["price"], currency=cells["currency"], stock=cells["stock"]), []


def _cells(file: str, row_no: int, raw: dict, columns: tuple[str, ...],
           required: tuple[str, ...]) -> tuple[dict, list[RowError]]:
    """The row's `columns` checked and cleaned (a size also as `size_value` and `nominal_foot_length_mm`); an
    error for each bad cell and for each empty one of `required`."""
    cells, errors = {}, []
    for column in columns:
        value = raw.get(column)
        if column in required and not _text(value):
            errors.append(RowError(file, row_no, column, f"{column} is missing: every row needs it"))
            continue
        try:
            cells[column] = _CELL[column](value)
        except CatalogError as exc:
            errors.append(RowError(file, row_no, column, str(exc)))
    if cells.get("size_system") and cells.get("size"):
        try:
            cells["size_value"], cells["nominal_foot_length_mm"] = _size(cells["size_system"], cells["size"])
        except CatalogError as exc:
            errors.append(RowError(file, row_no, "size", str(exc)))
    else:
        cells["size_value"] = cells["nominal_foot_length_mm"] = 0.0
    return cells, errors


def _consistent(file: str, rows: list[ProductRow]) -> tuple[list[ProductRow], list[RowError]]:
    """Rows without duplicate SKUs or sizes, whose model columns agree with the model's first row."""
    first_by_sku: dict[str, ProductRow] = {}
    first_by_size: dict[SizeKey, ProductRow] = {}
    first_by_model: dict[tuple[str, str], ProductRow] = {}
    kept, errors = [], []
    for row in rows:
        model = first_by_model.setdefault(row.model_key, row)
        differing = [c for c in MODEL_COLUMNS if _model_value(row, c) != _model_value(model, c)]
        if row.sku in first_by_sku:
            errors.append(_duplicate_sku(file, row, first_by_sku[row.sku]))
        elif row.size_key in first_by_size:
            errors.append(RowError(file, row.row, "size", f"{row.brand} {row.model_code} size {row.size_system} "
                                   f"{row.size_label} ({row.width}) is already on row "
                                   f"{first_by_size[row.size_key].row}: one row per size variant"))
        elif differing:
            column = differing[0]
            errors.append(RowError(file, row.row, column, f"{column} {_model_value(row, column)!r} differs from "
                                   f"{_model_value(model, column)!r} on row {model.row} for the same model "
                                   f"{row.brand} {row.model_code}: give every size of a model the same {column}"))
        else:
            first_by_sku[row.sku] = row
            first_by_size[row.size_key] = row
            kept.append(row)
    return kept, errors


def _one_sku_per_size(file: str, rows: list[AssortmentRow]) -> tuple[list[AssortmentRow], list[RowError]]:
    """Rows without duplicate SKUs, and without two SKUs for one size."""
    first_by_sku: dict[str, AssortmentRow] = {}
    first_by_size: dict[object, AssortmentRow] = {}
    kept, errors = [], []
    for row in rows:
        size = row.size or ("ean", row.ean)
        if row.sku in first_by_sku:
            errors.append(_duplicate_sku(file, row, first_by_sku[row.sku]))
        elif size in first_by_size:
            errors.append(RowError(file, row.row, "sku", f"{row.names()} is already SKU "
                                   f"{first_by_size[size].sku!r} on row {first_by_size[size].row}: a size has one "
                                   f"SKU in an assortment"))
        else:
            first_by_sku[row.sku] = first_by_size[size] = row
            kept.append(row)
    return kept, errors


def _duplicate_sku(file: str, row, first) -> RowError:
    return RowError(file, row.row, "sku", f"duplicate SKU {row.sku!r} (first on row {first.row}): give every size "
                                          f"variant its own SKU")


def _model_value(row: ProductRow, column: str):
    return row.attributes_json if column == "attributes" else getattr(row, column)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).strip()


def _storable(what: str, text: str, limit: int | None = None) -> str:
    """`text` if the database can store it as `what`."""
    if limit is not None and len(text) > limit:
        raise CatalogError(f"{what} {text[:24]!r}... is {len(text)} characters long, more than {limit}: shorten it")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        raise CatalogError(f"{what} {text!r} contains control characters: remove them (tabs and line breaks "
                           f"included)")
    return text


def _free_text(column: str) -> Callable[[object], str]:
    return lambda value: _storable(column, _text(value), _LENGTHS.get(column))


def _sku(value) -> str:
    """A SKU is a code that people type and scanners read: printable characters only (no unassigned code points,
    format characters or separators but the space), beside what any text must be."""
    text = _storable("sku", _text(value), _LENGTHS.get("sku"))
    if not text.isprintable():
        raise CatalogError(f"sku {text!r} contains characters that cannot be printed: use letters, digits and "
                           f"punctuation")
    return text


def _one_of(allowed: tuple[str, ...], what: str) -> Callable[[object], str]:
    def check(value) -> str:
        text = _text(value).lower()
        if text not in allowed:
            raise CatalogError(f"unknown {what} {_text(value)!r}: use one of {', '.join(a for a in allowed if a)}")
        return text
    return check


def _size_system(value) -> str:
    return size_system(_text(value)).code if _text(value) else ""


def _size(system_code: str, label: str) -> tuple[float, float]:
    """The label as a number (rounded as stored) and the nominal foot length it is for."""
    system = SIZE_SYSTEMS[system_code]
    try:
        value = parse_size_label(system, label)
    except ZeroDivisionError:  # core.sizes reads "42 1/0" as a fraction before checking it
        raise CatalogError(f"size {label!r} divides by zero: write e.g. 42, 42.5, 42 2/3 or 8 1/2") from None
    return round(value, 4), round(system.foot_length_mm(value), 2)


def _ean(value) -> str:
    text = _text(value)
    if not text:
        return ""
    if not (text.isascii() and text.isdigit() and len(text) == 13):
        raise CatalogError(f"EAN {text!r} is not 13 digits: give the EAN-13 from the barcode, or leave it empty")
    weights = [1, 3] * 6
    check = (10 - sum(int(d) * w for d, w in zip(text[:12], weights)) % 10) % 10
    if check != int(text[12]):
        raise CatalogError(f"EAN {text!r} has a wrong check digit (expected {check}): it was mistyped")
    return text


def _currency(value) -> str:
    text = _text(value) or "EUR"
    if not _CURRENCY.fullmatch(text):
        raise CatalogError(f"currency {text!r} is not an ISO 4217 code: write e.g. EUR, GBP, USD")
    return text


def _price_cents(value) -> int | None:
    text = _text(value)
    if not text:
        return None
    try:
        price = Decimal(text.replace(",", "."))
    except InvalidOperation:
        price = Decimal(-1)
    if not price.is_finite() or not 0 <= price <= MAX_PRICE or price != price.quantize(Decimal("0.01")):
        raise CatalogError(f"price {text!r} is not an amount: write e.g. 129.95 (at most two decimals, no currency "
                           f"sign, below {MAX_PRICE:,})")
    return int(price * 100)


def _stock(value) -> dict[str, int] | None:
    """CSV 'STORE=QTY;STORE=QTY' or a JSON object; None when empty (the file says nothing about stock)."""
    if value is None or value == "":
        return None
    items = value.items() if isinstance(value, dict) else (
        part.split("=", 1) if "=" in part else (part, None) for part in str(value).split(";") if part.strip())
    stock = {}
    for store, quantity in items:
        store = _storable("store code", str(store).strip(), _LENGTHS["store"])
        try:
            count = int(str(quantity).strip())
        except ValueError:
            count = -1
        if not store or not 0 <= count <= MAX_QUANTITY:
            raise CatalogError(f"stock entry {store}={quantity} is not STORE=QUANTITY with a whole number from 0 to "
                               f"{MAX_QUANTITY:,}: write e.g. BERLIN-01=3;MUNICH-02=0")
        stock[store] = count
    return stock


def _attributes(value) -> str:
    """CSV 'key=value;key=value' (values read as JSON where they parse) or a JSON object, as sorted JSON."""
    if value is None or value == "":
        return "{}"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    attributes = {}
    for part in str(value).split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise CatalogError(f"attribute {part.strip()!r} is not key=value: write e.g. drop_mm=8;waterproof=true")
        key, text = (s.strip() for s in part.split("=", 1))
        try:
            attributes[key] = json.loads(text)
        except (ValueError, RecursionError):
            attributes[key] = text
    return json.dumps(attributes, sort_keys=True)


_CELL: dict[str, Callable[[object], object]] = {
    **{column: _free_text(column) for column in ("brand", "model_code", "model_name", "use", "season", "size")},
    "sku": _sku,
    "category": _one_of(CATEGORIES, "category"),
    "gender": _one_of(GENDERS, "gender"),
    "level": _one_of(LEVELS, "level"),
    "width": lambda value: width_fitting(_text(value).lower()),
    "ean": _ean,
    "size_system": _size_system,
    "price": _price_cents,
    "currency": _currency,
    "stock": _stock,
    "attributes": _attributes,
}


@dataclass(frozen=True)
class InteriorFile:
    """An interior scan: its name as messages give it (folder/file), and its bytes from a file or an upload."""

    name: str
    path: Path | None = None  # read when the scan is measured, so a large folder is never in memory at once
    data: bytes | None = None

    def read(self) -> bytes:
        return self.data if self.path is None else self.path.read_bytes()


def interior_files(folder: Path | None) -> dict[str, InteriorFile]:
    """The interior scan files in a folder by their slugged name (see ProductRow.interior_stems)."""
    if folder is None:
        return {}
    if not folder.is_dir():
        raise CatalogError(f"--interiors {folder} is not a folder: give the folder holding the PLY/STL/OBJ scans")
    return interiors_by_stem(InteriorFile(f"{folder.name}/{p.name}", path=p)
                             for p in sorted(folder.iterdir()) if p.is_file())


def interiors_by_stem(files: Iterable[InteriorFile]) -> dict[str, InteriorFile]:
    """The mesh files (PLY/STL/OBJ) among `files` by their slugged name; other files are not scans."""
    return {slug(Path(f.name).stem): f for f in files if Path(f.name).suffix.lower() in MESH_SUFFIXES}
