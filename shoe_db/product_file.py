"""The retailer product-data format: one row per size variant, CSV or JSON Lines (docs/catalog.md).

Reading checks every cell and collects row-level errors that name the file, the row, the column and the fix;
nothing here touches the database.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from core.errors import CatalogError
from core.mesh import MESH_SUFFIXES
from core.sizes import parse_size_label, size_system, width_fitting
from shoe_db.models import CATEGORIES, GENDERS, LEVELS

COLUMNS = ("sku", "ean", "brand", "model_code", "model_name", "category", "gender", "use", "level", "width",
           "price", "currency", "season", "size_system", "size", "stock", "attributes")
REQUIRED = ("sku", "brand", "model_code", "model_name", "category", "gender", "price", "size_system", "size")
MODEL_COLUMNS = ("model_name", "category", "gender", "use", "level", "price", "currency", "season", "attributes")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class RowError:
    file: str
    row: int  # CSV: spreadsheet row (1 = header); JSONL: line number
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}, row {self.row}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class ProductRow:
    """One size variant as the product file gives it, checked."""

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
    price_cents: int
    currency: str
    season: str
    size_system: str
    size_label: str
    size_value: float
    nominal_foot_length_mm: float
    stock: dict[str, int] | None  # None: the file says nothing about stock, keep what the database has
    attributes_json: str

    @property
    def model_key(self) -> tuple[str, str]:
        return self.brand, self.model_code

    def interior_stems(self) -> tuple[str, str]:
        """The file names (without suffix) an interior scan of this variant may have: by SKU, by model+size."""
        width = "" if self.width == "standard" else f" {self.width}"
        return slug(self.sku), slug(f"{self.brand} {self.model_code} {self.size_system} {self.size_label}{width}")


def slug(text: str) -> str:
    """Lower case, every run of characters other than letters, digits and dots replaced by one '-'."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def read_products(path: Path) -> tuple[list[ProductRow], list[RowError]]:
    """The valid rows of a product file and the errors of the others (duplicates and conflicts included)."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"no product file at {path}: check the path")
    return parse_products(path.name, path.read_bytes().decode("utf-8-sig"))


def parse_products(file: str, text: str) -> tuple[list[ProductRow], list[RowError]]:
    """`read_products` for the text of a product file called `file` (an upload): its suffix gives the format."""
    rows: list[ProductRow] = []
    errors: list[RowError] = []
    for row_no, raw in _raw_rows(file, text):
        row, row_errors = _parse_row(file, row_no, raw)
        errors.extend(row_errors)
        if row is not None:
            rows.append(row)
    consistent, conflicts = _consistent(file, rows)
    return consistent, sorted(errors + conflicts, key=lambda e: e.row)


def _raw_rows(file: str, text: str) -> Iterator[tuple[int, dict]]:
    suffix = Path(file).suffix
    if suffix.lower() == ".csv":
        yield from _csv_rows(file, text)
    elif suffix.lower() in (".jsonl", ".ndjson"):
        yield from _jsonl_rows(file, text)
    else:
        raise CatalogError(f"{file}: unknown product file type {suffix!r}: give a .csv or .jsonl file")


def _csv_rows(file: str, text: str) -> Iterator[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    _check_header(file, header)
    reader.fieldnames = header
    for index, raw in enumerate(reader):
        yield index + 2, raw


def _jsonl_rows(file: str, text: str) -> Iterator[tuple[int, dict]]:
    for line_no, line in enumerate(io.StringIO(text, newline=None), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{file}, row {line_no}: not a JSON object ({exc.msg}): one product "
                               f"per line as a JSON object") from None
        if not isinstance(raw, dict):
            raise CatalogError(f"{file}, row {line_no}: a JSON {type(raw).__name__}, not an object: "
                               f"one product per line as a JSON object")
        yield line_no, raw


def _check_header(file: str, header: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CatalogError(f"{file}: the header lacks the column(s) {', '.join(missing)}: the first row must "
                           f"name the columns ({', '.join(COLUMNS)})")


def _parse_row(file: str, row_no: int, raw: dict) -> tuple[ProductRow | None, list[RowError]]:
    errors: list[RowError] = []

    def fail(column: str, message: str) -> None:
        errors.append(RowError(file, row_no, column, message))

    text = {c: _text(raw.get(c)) for c in COLUMNS if c not in ("stock", "attributes")}
    for column in ("category", "gender", "level", "width"):
        text[column] = text[column].lower()
    for column in REQUIRED:
        if not text[column]:
            fail(column, f"{column} is missing: every row needs it")
    system = label = None
    value = foot_mm = 0.0
    if text["size_system"]:
        try:
            system = size_system(text["size_system"])
        except CatalogError as exc:
            fail("size_system", str(exc))
    if system and text["size"]:
        try:
            value = parse_size_label(system, text["size"])
            label = text["size"]
            foot_mm = system.foot_length_mm(value)
        except CatalogError as exc:
            fail("size", str(exc))
    checks = {
        "category": lambda v: _one_of(v, CATEGORIES, "category"),
        "gender": lambda v: _one_of(v, GENDERS, "gender"),
        "level": lambda v: _one_of(v, LEVELS, "level"),
        "width": width_fitting,
        "ean": _ean,
        "currency": lambda v: _currency(v or "EUR"),
    }
    cleaned = {}
    for column, check in checks.items():
        try:
            cleaned[column] = check(text[column])
        except CatalogError as exc:
            fail(column, str(exc))
    price_cents = 0
    if text["price"]:
        try:
            price_cents = _price_cents(text["price"])
        except CatalogError as exc:
            fail("price", str(exc))
    stock = attributes = None
    try:
        stock = _stock(raw.get("stock"))
    except CatalogError as exc:
        fail("stock", str(exc))
    try:
        attributes = _attributes(raw.get("attributes"))
    except CatalogError as exc:
        fail("attributes", str(exc))
    if errors:
        return None, errors
    return ProductRow(
        row=row_no, sku=text["sku"], ean=cleaned["ean"], brand=text["brand"], model_code=text["model_code"],
        model_name=text["model_name"], category=cleaned["category"], gender=cleaned["gender"], use=text["use"],
        level=cleaned["level"], width=cleaned["width"], price_cents=price_cents, currency=cleaned["currency"],
        season=text["season"], size_system=system.code, size_label=label, size_value=round(value, 4),
        nominal_foot_length_mm=round(foot_mm, 2), stock=stock, attributes_json=attributes,
    ), []


def _consistent(file: str, rows: list[ProductRow]) -> tuple[list[ProductRow], list[RowError]]:
    """Rows without duplicate SKUs or sizes, whose model columns agree with the model's first row."""
    first_by_sku: dict[str, ProductRow] = {}
    first_by_size: dict[tuple, ProductRow] = {}
    first_by_model: dict[tuple[str, str], ProductRow] = {}
    kept, errors = [], []
    for row in rows:
        size_key = (row.model_key, row.size_system, row.size_value, row.width)
        model = first_by_model.setdefault(row.model_key, row)
        differing = [c for c in MODEL_COLUMNS if _model_value(row, c) != _model_value(model, c)]
        if row.sku in first_by_sku:
            errors.append(RowError(file, row.row, "sku", f"duplicate SKU {row.sku!r} (first on row "
                                   f"{first_by_sku[row.sku].row}): give every size variant its own SKU"))
        elif size_key in first_by_size:
            errors.append(RowError(file, row.row, "size", f"{row.brand} {row.model_code} size {row.size_system} "
                                   f"{row.size_label} ({row.width}) is already on row {first_by_size[size_key].row}: "
                                   f"one row per size variant"))
        elif differing:
            column = differing[0]
            errors.append(RowError(file, row.row, column, f"{column} {_model_value(row, column)!r} differs from "
                                   f"{_model_value(model, column)!r} on row {model.row} for the same model "
                                   f"{row.brand} {row.model_code}: give every size of a model the same {column}"))
        else:
            first_by_sku[row.sku] = row
            first_by_size[size_key] = row
            kept.append(row)
    return kept, errors


def _model_value(row: ProductRow, column: str):
    return {"price": row.price_cents, "attributes": row.attributes_json}.get(column, getattr(row, column, None))


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).strip()


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise CatalogError(f"unknown {what} {value!r}: use one of {', '.join(a for a in allowed if a)}")
    return value


def _ean(value: str) -> str:
    if not value:
        return ""
    if not (value.isdigit() and len(value) == 13):
        raise CatalogError(f"EAN {value!r} is not 13 digits: give the EAN-13 from the barcode, or leave it empty")
    weights = [1, 3] * 6
    check = (10 - sum(int(d) * w for d, w in zip(value[:12], weights)) % 10) % 10
    if check != int(value[12]):
        raise CatalogError(f"EAN {value!r} has a wrong check digit (expected {check}): it was mistyped")
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise CatalogError(f"currency {value!r} is not an ISO 4217 code: write e.g. EUR, GBP, USD")
    return value


def _price_cents(value: str) -> int:
    try:
        price = Decimal(value.replace(",", "."))
    except InvalidOperation:
        price = Decimal(-1)
    if not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.01")):
        raise CatalogError(f"price {value!r} is not an amount: write e.g. 129.95 (at most two decimals, no currency "
                           f"sign)")
    return int(price * 100)


def _stock(value) -> dict[str, int] | None:
    """CSV 'STORE=QTY;STORE=QTY' or a JSON object; None when empty (the file says nothing about stock)."""
    if value is None or value == "":
        return None
    items = value.items() if isinstance(value, dict) else (
        part.split("=", 1) if "=" in part else (part, None) for part in str(value).split(";") if part.strip())
    stock = {}
    for store, quantity in items:
        store = str(store).strip()
        try:
            count = int(str(quantity).strip())
        except ValueError:
            count = -1
        if not store or count < 0:
            raise CatalogError(f"stock entry {store}={quantity} is not STORE=QUANTITY with a whole number >= 0: "
                               f"write e.g. BERLIN-01=3;MUNICH-02=0")
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
        except json.JSONDecodeError:
            attributes[key] = text
    return json.dumps(attributes, sort_keys=True)


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
