"""The catalogue's tables: the operator's interior database (brands, shoe models, size variants, their interiors
and scans) shared by every retailer, and the stores with their stock.

A size variant is a model in one size label and width fitting, under the operator's SKU. Its interior is either
measured from a scan of that size (`source` "scanned") or derived from a scanned size of the same model by grading
("graded", `graded_from_id` names the scanned variant). The matcher reads only the `interior` table (descriptors +
sections blob); the scanned meshes sit in `interior_scan`. Prices are no model's: each retailer prices what it
sells in its assortment (api.models.AssortmentItem). A store belongs to one retailer (api.models.TenantStore), and
so does its stock: the fit service writes it through the retailer's assortment, never the operator's import.
"""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

CATEGORIES = ("walking", "running", "trail", "hiking", "ski", "cycling", "casual")
GENDERS = ("men", "women", "unisex", "kids")
LEVELS = ("", "beginner", "intermediate", "advanced", "expert")
INTERIOR_SOURCES = ("scanned", "graded")


class Brand(SQLModel, table=True):
    __tablename__ = "brand"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=120)


class ShoeModel(SQLModel, table=True):
    __tablename__ = "shoe_model"
    __table_args__ = (UniqueConstraint("brand_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    brand_id: int = Field(foreign_key="brand.id", index=True)
    code: str = Field(max_length=80)  # the brand's style number
    name: str = Field(max_length=200)
    category: str = Field(max_length=20, index=True)
    gender: str = Field(max_length=10)
    use: str = Field(default="", max_length=80)  # e.g. road, trail, touring, alpine
    level: str = Field(default="", max_length=20)
    season: str = Field(default="", max_length=20)
    attributes_json: str = Field(default="{}")  # JSON object, keys sorted


class SizeVariant(SQLModel, table=True):
    __tablename__ = "size_variant"

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="shoe_model.id", index=True)
    sku: str = Field(unique=True, index=True, max_length=80)
    ean: str = Field(default="", max_length=13)
    size_system: str = Field(max_length=5)
    size_label: str = Field(max_length=12)  # as printed, e.g. "42 2/3"
    size_value: float  # the label as a number, e.g. 42.6667
    width: str = Field(default="standard", max_length=12)
    nominal_foot_length_mm: float  # the foot the label is for (ISO 19407), see core.sizes


class Descriptors(SQLModel):
    """The classic last measures of one size's cavity (mm, ml), measured on its sections (shoe_db.interior), so
    scanned and graded sizes are measured alike; stored with each interior."""

    inner_length_mm: float
    ball_width_mm: float
    ball_girth_mm: float
    instep_girth_mm: float
    heel_width_mm: float
    toe_box_height_mm: float
    volume_ml: float


class Interior(Descriptors, table=True):
    __tablename__ = "interior"

    size_id: int = Field(foreign_key="size_variant.id", primary_key=True)
    source: str = Field(max_length=8)  # scanned | graded
    graded_from_id: int | None = Field(default=None, foreign_key="size_variant.id")
    sections: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # see fitcore.fit.sections
    # the girth round a ball line at each station and angle, computed from the sections when the interior is
    # stored (fitcore.fit.ball_line.table_to_blob), so a matcher loads it instead of computing it
    ball_girths: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class InteriorScan(SQLModel, table=True):
    """The scanned cavity in the shoe frame: float32 vertices (mm) then int32 triangles, little-endian."""

    __tablename__ = "interior_scan"

    size_id: int = Field(foreign_key="size_variant.id", primary_key=True)
    sha256: str = Field(max_length=64)  # of the file as delivered: a re-import of the same file is skipped
    vertex_count: int
    triangle_count: int
    mesh: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Store(SQLModel, table=True):
    __tablename__ = "store"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=40)


class Stock(SQLModel, table=True):
    __tablename__ = "stock"

    store_id: int = Field(foreign_key="store.id", primary_key=True)
    size_id: int = Field(foreign_key="size_variant.id", primary_key=True, index=True)
    quantity: int


class DataVersion(SQLModel, table=True):
    """A counter per body of data that service processes keep in memory ("catalogue": shoes, interiors and stock;
    "assortment:<tenant id>": a retailer's assortment; "learning:<scope>": the learned state in use). Every write
    of that data adds one in its own transaction, so a process that sees an unchanged counter knows its copy is
    current (shoe_db/versions.py)."""

    __tablename__ = "data_version"

    name: str = Field(primary_key=True, max_length=40)
    version: int = 0
