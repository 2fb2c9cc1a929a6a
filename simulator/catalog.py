"""A synthetic shoe catalogue, as a retailer's product system would deliver it: product rows + interior scans.

Interiors come from parametric lasts: the cavity of a shoe for the nominal foot of its size label (docs/simulator.md,
population data: breadth ~0.38 and ball girth ~0.93 of foot length), lengthened by the category's toe allowance
(docs/fit-model.md), with a toe-box shape, a medially leaning toe (left shoe), and the market's imperfection: each
brand runs small, true or large, and each model deviates again, so a labelled size is about half a size off
nominal on average. That hidden truth is returned (and written to truth.json), never put in the product file.

Each model is scanned in one or two sizes; the importer grades the others. Deterministic by seed.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from core.errors import SimulatorError
from core.mesh import Mesh, write_mesh
from core.sizes import GIRTH_PER_WIDTH_FITTING_MM, SIZE_SYSTEMS, width_steps
from shoe_db.product_file import COLUMNS

# category -> (toe allowance mean mm, sd mm), collar (cap) height mm, toe-box height mm, base price EUR
_CATEGORY = {
    "walking": ((17.0, 1.5), 58.0, 30.0, 110.0),
    "running": ((15.0, 2.0), 55.0, 29.0, 130.0),
    "trail": ((14.0, 1.5), 58.0, 30.0, 140.0),
    "hiking": ((11.0, 1.0), 85.0, 33.0, 170.0),
    "ski": ((None, None), 110.0, 32.0, 450.0),
    "cycling": ((6.0, 1.5), 50.0, 26.0, 180.0),
    "casual": ((17.0, 2.0), 52.0, 29.0, 90.0),
}
_CATEGORY_SHARE = {"running": 0.25, "walking": 0.2, "hiking": 0.15, "trail": 0.1, "casual": 0.12, "cycling": 0.08,
                   "ski": 0.1}
_SKI_ALLOWANCE_BY_LEVEL = {"expert": 7.0, "advanced": 10.0, "intermediate": 15.0, "beginner": 20.0}
# (category, gender) -> size system and run (first, last, step)
_RUNS = {
    "running": {"men": ("US-M", 7, 13, 0.5), "women": ("US-W", 5, 11, 0.5)},
    "trail": {"men": ("US-M", 7, 13, 0.5), "women": ("US-W", 5, 11, 0.5)},
    "hiking": {"men": ("UK", 6, 12, 0.5), "women": ("UK", 3.5, 8, 0.5)},
    "ski": {"men": ("MP", 25.5, 31.5, 0.5), "women": ("MP", 22.5, 27.5, 0.5)},
    "walking": {"men": ("EU", 40, 47, 1), "women": ("EU", 36, 42, 1)},
    "cycling": {"men": ("EU", 39, 47, 1), "women": ("EU", 36, 42, 1)},
    "casual": {"men": ("EU", 40, 46, 1), "women": ("EU", 36, 41, 1), "unisex": ("EU", 36, 46, 1)},
}
_TOE_SHAPES = {"round": 0.5, "square": 0.3, "pointed": 0.8}  # exponent of the toe box's taper
_BRAND_WORDS = ("Alpen", "Stride", "Nordkap", "Vela", "Kestrel", "Trailwise", "Oska", "Brenta", "Solent", "Marmo",
                "Pacer", "Lumo", "Tundra", "Ferro", "Calder", "Izar")
_NAME_WORDS = ("Glide", "Summit", "Ridge", "Tempo", "Flow", "Arc", "Pulse", "Trek", "Drift", "Peak", "Edge",
               "Nova", "Crest", "Wave", "Core", "Rise")
_LEVELS = ("beginner", "intermediate", "advanced", "expert")
_USE = {"running": "road", "trail": "trail", "hiking": "touring", "ski": "alpine", "cycling": "road",
        "walking": "city", "casual": "everyday"}
RING_COUNT = 44  # cross-sections of the generated cavity mesh
RING_POINTS = 32  # points per cross-section: 2,816 triangles per interior
SUPERELLIPSE_EXPONENT = 2.6
MIN_FREE_LENGTH_MM = 2.0  # even a cycling shoe of a brand that runs small leaves the labelled foot this much


@dataclass(frozen=True)
class LastSpec:
    """Everything that shapes one generated interior (mm)."""

    foot_length_mm: float  # the nominal foot of the size label
    allowance_mm: float
    length_bias_mm: float  # brand + model: positive runs large
    girth_bias_mm: float
    collar_height_mm: float
    toe_box_height_mm: float
    toe_shape: str
    toe_offset_mm: float  # how far the toe leans medially (-y) in a left shoe

    @property
    def inner_length_mm(self) -> float:
        return self.foot_length_mm + self.allowance_mm + self.length_bias_mm

    @property
    def ball_width_mm(self) -> float:
        return 0.38 * self.foot_length_mm + 1.0 + 0.3 * self.girth_bias_mm

    @property
    def ball_girth_mm(self) -> float:
        return 0.93 * self.foot_length_mm + 2.0 + self.girth_bias_mm


@dataclass(frozen=True)
class ModelTruth:
    """What the simulator knows about a model and the product file does not say."""

    brand: str
    model_code: str
    category: str
    brand_tendency: str  # runs small, true or large
    length_bias_mm: float
    girth_bias_mm: float
    allowance_mm: float
    scanned_skus: tuple[str, ...]


@dataclass(frozen=True)
class SyntheticCatalogue:
    rows: list[dict]  # product rows in the import format (shoe_db.product_file.COLUMNS)
    interiors: dict[str, Mesh]  # interior file name -> cavity mesh of the left shoe
    truth: list[ModelTruth]
    stores: tuple[str, ...]
    lasts: dict[str, LastSpec] = field(default_factory=dict)  # scanned SKU -> the last its scan was made on


def generate_catalogue(models: int, seed: int, stores: int = 5) -> SyntheticCatalogue:
    """`models` shoe models over brands and categories with their size runs, scans and stock."""
    if models < 1:
        raise SimulatorError(f"--models {models}: ask for at least one model")
    if stores < 1:
        raise SimulatorError(f"--stores {stores}: a catalogue needs at least one store")
    rng = np.random.default_rng(seed)
    store_codes = tuple(f"STORE-{i + 1:02d}" for i in range(stores))
    brands = _brands(rng, max(2, min(len(_BRAND_WORDS), models // 20 + 2)))
    rows, interiors, truth, lasts = [], {}, [], {}
    for index in range(models):
        brand, tendency, brand_bias = brands[index % len(brands)]
        model_rows, model_interiors, model_truth, model_lasts = _model(rng, index, brand, tendency, brand_bias,
                                                                       store_codes, len(rows))
        rows += model_rows
        interiors.update(model_interiors)
        truth.append(model_truth)
        lasts.update(model_lasts)
    return SyntheticCatalogue(rows, interiors, truth, store_codes, lasts)


def true_last(catalogue: SyntheticCatalogue, sku: str) -> LastSpec:
    """The last that size `sku` is really built on, scanned or not: the simulator's truth, never graded.

    A scanned size is its scan's own last. Any other size is the model's last (the shape, allowance and biases
    of its scanned size nearest in length) made for the nominal foot of its own label, so its length, breadth
    and girth follow the last's proportions (0.93 mm of girth per mm of foot), not the importer's grading law;
    a wider fitting adds GIRTH_PER_WIDTH_FITTING_MM of girth per fitting. Ski boots: a whole and a half
    Mondopoint size share the shell of the half size."""
    rows = {r["sku"]: r for r in catalogue.rows}
    if sku not in rows:
        raise SimulatorError(f"SKU {sku!r} is not in this synthetic catalogue: take one of its rows' SKUs")
    if sku in catalogue.lasts:
        return catalogue.lasts[sku]
    row = rows[sku]
    scanned = [s for s in catalogue.lasts if rows[s]["model_code"] == row["model_code"]]
    foot_mm = _true_foot_length_mm(row)
    nearest = min(scanned, key=lambda s: abs(catalogue.lasts[s].foot_length_mm - foot_mm))
    last = catalogue.lasts[nearest]
    fittings = width_steps(rows[nearest]["width"], row["width"])
    return replace(last, foot_length_mm=foot_mm,
                   girth_bias_mm=last.girth_bias_mm + fittings * GIRTH_PER_WIDTH_FITTING_MM)


def _true_foot_length_mm(row: dict) -> float:
    """The foot a size's last is made for: its label's nominal foot; a ski boot's shell is its half size's."""
    label = float(row["size"])
    if row["category"] == "ski" and row["size_system"] == "MP":
        label = math.floor(label) + 0.5
    return SIZE_SYSTEMS[row["size_system"]].foot_length_mm(label)


def write_catalogue(catalogue: SyntheticCatalogue, out: Path, fmt: str = "csv") -> Path:
    """Write products.csv (or .jsonl), interiors/*.ply and truth.json into `out`; return the products file."""
    if fmt not in ("csv", "jsonl"):
        raise SimulatorError(f"unknown product file format {fmt!r}: use csv or jsonl")
    out = Path(out)
    (out / "interiors").mkdir(parents=True, exist_ok=True)
    products = out / f"products.{fmt}"
    with products.open("w", newline="", encoding="utf-8") as f:
        if fmt == "csv":
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows({**r, "stock": _pairs(r["stock"]), "attributes": _pairs(r["attributes"])}
                             for r in catalogue.rows)
        else:
            f.writelines(json.dumps(r) + "\n" for r in catalogue.rows)
    for name, mesh in catalogue.interiors.items():
        write_mesh(out / "interiors" / name, mesh)
    (out / "truth.json").write_text(json.dumps([asdict(t) for t in catalogue.truth], indent=1))
    return products


def _pairs(mapping: dict) -> str:
    return ";".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in mapping.items())


def _brands(rng: np.random.Generator, count: int) -> list[tuple[str, str, float]]:
    """(name, tendency, length bias mm): a quarter run small, a quarter large, half about true."""
    brands = []
    for name in _BRAND_WORDS[:count]:
        tendency = rng.choice(["small", "true", "true", "large"])
        centre = {"small": -5.0, "true": 0.0, "large": 5.0}[tendency]
        brands.append((name, str(tendency), float(centre + rng.normal(0.0, 1.5))))
    return brands


def _model(rng, index: int, brand: str, tendency: str, brand_bias: float, stores: tuple[str, ...],
           ean_start: int) -> tuple[list[dict], dict[str, Mesh], ModelTruth, dict[str, LastSpec]]:
    category = str(rng.choice(list(_CATEGORY_SHARE), p=list(_CATEGORY_SHARE.values())))
    genders = list(_RUNS[category])
    gender = str(rng.choice(genders))
    level = str(rng.choice(_LEVELS))
    (allow_mean, allow_sd), collar, toe_box, base_price = _CATEGORY[category]
    allowance = _SKI_ALLOWANCE_BY_LEVEL[level] if category == "ski" else rng.normal(allow_mean, allow_sd)
    model_bias = float(rng.normal(0.0, 1.5))
    length_bias = max(brand_bias + model_bias, MIN_FREE_LENGTH_MM - allowance)  # no brand sells toe-crushers
    girth_bias = float(rng.normal(0.0, 3.0))
    toe_shape = str(rng.choice(list(_TOE_SHAPES)))
    code = f"{brand[:2].upper()}{1000 + index}"
    name = f"{rng.choice(_NAME_WORDS)} {rng.choice(_NAME_WORDS)} {int(rng.integers(1, 9))}"
    system, first, last, step = _RUNS[category][gender]
    labels = np.arange(first, last + step / 2, step)
    widths = ["standard", "wide"] if category in ("walking", "running", "hiking") and rng.random() < 0.2 else \
        ["standard"]
    scanned = {labels[len(labels) // 2]} | ({labels[1], labels[-2]} if rng.random() < 0.3 else set())
    price = f"{max(19.0, round(base_price * rng.lognormal(0.0, 0.25) / 10) * 10 - 0.05):.2f}"
    common = dict(brand=brand, model_code=code, model_name=name, category=category, gender=gender,
                  use=_USE[category], level=level, price=price, currency="EUR",
                  season=str(rng.choice(["SS25", "FW25", "all"])), size_system=system,
                  attributes=_attributes(rng, category))
    rows, interiors, lasts = [], {}, {}
    middle = labels[len(labels) // 2]
    for width in widths:
        for label in labels:
            size = _label_text(label)
            sku = f"{code}-{width[0].upper()}-{size.replace('.', '')}"
            rows.append(dict(common, sku=sku, ean=_ean(ean_start + len(rows)), width=width, size=size,
                             stock=_stock(rng, stores, abs(label - middle) / (last - first + step))))
            if width == "standard" and label in scanned:
                spec = LastSpec(
                    foot_length_mm=SIZE_SYSTEMS[system].foot_length_mm(label), allowance_mm=float(allowance),
                    length_bias_mm=length_bias, girth_bias_mm=girth_bias, collar_height_mm=collar,
                    toe_box_height_mm=toe_box + float(rng.normal(0.0, 1.5)), toe_shape=toe_shape,
                    toe_offset_mm=float(rng.uniform(4.0, 9.0)))
                by_sku = rng.random() < 0.5  # retailers name scans either way
                stem = sku if by_sku else f"{brand} {code} {system} {size}"
                interiors[f"{stem.replace(' ', '_')}.ply"] = last_interior(spec)
                lasts[sku] = spec
    truth = ModelTruth(brand, code, category, tendency, round(length_bias, 3), round(girth_bias, 3),
                       round(float(allowance), 3), tuple(lasts))
    return rows, interiors, truth, lasts


def _label_text(label: float) -> str:
    return f"{label:g}"


def _attributes(rng, category: str) -> dict:
    if category in ("running", "trail"):
        return {"drop_mm": int(rng.choice([0, 4, 6, 8, 10, 12])), "stack_mm": int(rng.integers(20, 40))}
    if category == "hiking":
        return {"waterproof": bool(rng.random() < 0.6)}
    if category == "ski":
        return {"flex": int(rng.choice([70, 80, 90, 100, 110, 120, 130]))}
    if category == "cycling":
        return {"cleat": str(rng.choice(["SPD", "SPD-SL"]))}
    return {"removable_insole": bool(rng.random() < 0.5)}


def _stock(rng, stores: tuple[str, ...], distance_from_middle: float) -> dict[str, int]:
    """Central sizes are stocked more; many store-size pairs are empty."""
    mean = 2.5 * math.exp(-((distance_from_middle / 0.3) ** 2))
    return {store: int(rng.poisson(mean)) for store in stores}


def _ean(n: int) -> str:
    body = f"20{n:010d}"
    check = (10 - sum(int(d) * w for d, w in zip(body, [1, 3] * 6)) % 10) % 10
    return body + str(check)


def last_interior(spec: LastSpec) -> Mesh:
    """The closed cavity of a left shoe on a parametric last, in the shoe frame (docs/catalog.md)."""
    length = spec.inner_length_mm
    f = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, RING_COUNT + 2)[1:-1])  # denser at heel and toe
    rear = np.sqrt(np.minimum(f / 0.08, 1.0))
    front = np.minimum((1.0 - f) / 0.25, 1.0) ** _TOE_SHAPES[spec.toe_shape]
    ball_height = _height_for_girth(spec.ball_width_mm, spec.ball_girth_mm)
    foot = spec.foot_length_mm
    width = rear * front * np.interp(f, [0.0, 0.2, 0.42, 0.68, 0.76, 1.0],
                                     [0.25 * foot, 0.25 * foot, 0.82 * spec.ball_width_mm, spec.ball_width_mm,
                                      0.99 * spec.ball_width_mm, spec.ball_width_mm])
    height = np.interp(f, [0.0, 0.3, 0.5, 0.68, 0.85, 1.0],
                       [spec.collar_height_mm, spec.collar_height_mm, 0.24 * foot, ball_height,
                        spec.toe_box_height_mm, 0.4 * spec.toe_box_height_mm])
    centre_y = -spec.toe_offset_mm * np.clip((f - 0.45) / 0.55, 0.0, 1.0) ** 2
    angles = 2 * np.pi * np.arange(RING_POINTS) / RING_POINTS
    cos, sin = _superellipse(angles)
    rings = np.stack([
        np.repeat(f * length, RING_POINTS),
        (centre_y[:, None] + 0.5 * width[:, None] * cos).ravel(),
        (0.5 * height[:, None] * (1.0 + sin)).ravel(),
    ], axis=1)
    heel = [0.0, 0.0, 0.5 * spec.collar_height_mm]
    toe = [length, centre_y[-1], 0.5 * height[-1]]
    vertices = np.vstack([rings, [heel, toe]])
    return Mesh(vertices, _tube_triangles(RING_COUNT, RING_POINTS))


def _superellipse(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    power = 2.0 / SUPERELLIPSE_EXPONENT
    cos, sin = np.cos(angles), np.sin(angles)
    return np.sign(cos) * np.abs(cos) ** power, np.sign(sin) * np.abs(sin) ** power


def _height_for_girth(width_mm: float, girth_mm: float) -> float:
    """The section height that gives a superellipse of this width the wanted perimeter (bisection)."""
    cos, sin = _superellipse(np.linspace(0.0, 2 * np.pi, 257))
    low, high = 5.0, 3.0 * width_mm
    for _ in range(50):
        mid = 0.5 * (low + high)
        outline = np.stack([0.5 * width_mm * cos, 0.5 * mid * sin], axis=1)
        perimeter = np.linalg.norm(np.diff(outline, axis=0), axis=1).sum()
        low, high = (mid, high) if perimeter < girth_mm else (low, mid)
    return 0.5 * (low + high)


def _tube_triangles(rings: int, points: int) -> np.ndarray:
    """Triangles of a closed tube: quads between neighbouring rings, fans to the heel and toe vertices,
    counter-clockwise seen from outside."""
    ring = np.arange(points)
    nxt = (ring + 1) % points
    tris = []
    for r in range(rings - 1):
        a, b = r * points + ring, r * points + nxt
        c, d = (r + 1) * points + ring, (r + 1) * points + nxt
        tris += [np.stack([a, b, d], axis=1), np.stack([a, d, c], axis=1)]
    heel, toe = rings * points, rings * points + 1
    last = (rings - 1) * points
    tris += [np.stack([np.full(points, heel), nxt, ring], axis=1),
             np.stack([np.full(points, toe), last + ring, last + nxt], axis=1)]
    return np.vstack(tris).astype(np.int32)
