"""A synthetic shoe catalogue, as a retailer's product system would deliver it: product rows + interior scans.

Each model's master last is made for the nominal foot of its middle size (its ball girth and width are the
nominal foot's plus an ease, measured round the foot's ball line: simulator/lasts.py, docs/simulator.md), lengthened
by the category's toe allowance (docs/fit-model.md), with a toe-box shape, a medially leaning toe (left shoe), and
the market's imperfection: each brand runs small, true or large, and each model deviates again, so a labelled size
is about half a size off nominal on average. The master is of one of the last families of simulator/lasts.py, drawn
from the model's own seed. Every other size and width fitting of the model is graded from the master by its brand's
grading law (`GradingLaw`: girth per size step and per fitting, the fittings it makes), so the importer's fixed
grading is right for some brands and off for others. That hidden truth is returned (and written to truth.json),
never put in the product file.

Each model is scanned in one size (sometimes three); the importer grades the others. Deterministic by seed.
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
from core.sizes import GIRTH_PER_WIDTH_FITTING_MM, SIZE_SYSTEMS, UK_US_STEP_MM, width_steps
from shoe_db.product_file import COLUMNS
from simulator.lasts import TOE_SHAPES, Donor, Grade, LastSpec, last_interior

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
_BRAND_WORDS = ("Alpen", "Stride", "Nordkap", "Vela", "Kestrel", "Trailwise", "Oska", "Brenta", "Solent", "Marmo",
                "Pacer", "Lumo", "Tundra", "Ferro", "Calder", "Izar")
_NAME_WORDS = ("Glide", "Summit", "Ridge", "Tempo", "Flow", "Arc", "Pulse", "Trek", "Drift", "Peak", "Edge",
               "Nova", "Crest", "Wave", "Core", "Rise")
_LEVELS = ("beginner", "intermediate", "advanced", "expert")
_USE = {"running": "road", "trail": "trail", "hiking": "touring", "ski": "alpine", "cycling": "road",
        "walking": "city", "casual": "everyday"}
MIN_FREE_LENGTH_MM = 2.0  # even a cycling shoe of a brand that runs small leaves the labelled foot this much
FAMILY_SHARES = {"superellipse": 0.4, "foot": 0.4, "straight": 0.2}  # of the models, by last family
FOOT_DONOR_TEMPLATE_SHARE = 0.25  # `foot` lasts cut from the template; the others from a population foot...
FOOT_DONOR_SEEDS = (0, 1, 2)  # ...of one of these seeds, of the sex the model is made for (either for unisex)
_DONOR_SEX = {"men": "male", "women": "female"}
# Brand grading laws (docs/catalog.md, synthetic catalogue): ball girth per UK/US size around the arithmetic
# grading's 1/4 inch, per width fitting around GIRTH_PER_WIDTH_FITTING_MM, and the fittings a brand makes.
GIRTH_PER_SIZE_MM = (6.35, 1.0)  # mean, sd
GIRTH_PER_SIZE_RANGE_MM = (3.5, 9.5)
GIRTH_PER_FITTING_MM = (GIRTH_PER_WIDTH_FITTING_MM, 1.0)
GIRTH_PER_FITTING_RANGE_MM = (4.0, 9.0)
FITTING_RANGES = {("standard",): 0.3, ("standard", "wide"): 0.4, ("narrow", "standard", "wide"): 0.15,
                  ("standard", "wide", "extra-wide"): 0.15}
MULTI_WIDTH_CATEGORIES = ("walking", "running", "hiking")  # a model of these comes in all its brand's fittings...
MULTI_WIDTH_SHARE = 0.2  # ...this often
# independent random streams of a catalogue's seed, so that drawing one thing does not shift the others
_GRADING_STREAM, _LAST_STREAM = 1, 2


@dataclass(frozen=True)
class GradingLaw:
    """How a brand grades its lasts from a model's master last: ball girth per UK/US size step (8.47 mm of foot
    length) and per width fitting, and the width fittings it makes (narrowest first)."""

    girth_per_size_mm: float
    girth_per_fitting_mm: float
    fittings: tuple[str, ...]

    def girth_change_mm(self, foot_change_mm: float, fittings: int) -> float:
        """The ball girth this law adds for a foot `foot_change_mm` longer and `fittings` fittings wider."""
        return self.girth_per_size_mm * foot_change_mm / UK_US_STEP_MM + self.girth_per_fitting_mm * fittings


@dataclass(frozen=True)
class _Brand:
    name: str
    tendency: str  # runs small, true or large
    length_bias_mm: float
    grading: GradingLaw


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
    last_family: str  # one of simulator.lasts.LAST_FAMILIES
    grading: GradingLaw  # the brand's


@dataclass(frozen=True)
class SyntheticCatalogue:
    rows: list[dict]  # product rows in the import format (shoe_db.product_file.COLUMNS)
    interiors: dict[str, Mesh]  # interior file name -> cavity mesh of the left shoe
    truth: list[ModelTruth]
    stores: tuple[str, ...]
    lasts: dict[str, LastSpec] = field(default_factory=dict)  # every SKU -> the last it is really built on


def generate_catalogue(models: int, seed: int, stores: int = 5) -> SyntheticCatalogue:
    """`models` shoe models over brands and categories with their size runs, scans and stock."""
    if models < 1:
        raise SimulatorError(f"--models {models}: ask for at least one model")
    if stores < 1:
        raise SimulatorError(f"--stores {stores}: a catalogue needs at least one store")
    rng = np.random.default_rng(seed)
    store_codes = tuple(f"STORE-{i + 1:02d}" for i in range(stores))
    brands = _brands(rng, np.random.default_rng([seed, _GRADING_STREAM]),
                     max(2, min(len(_BRAND_WORDS), models // 20 + 2)))
    rows, interiors, truth, lasts = [], {}, [], {}
    for index in range(models):
        model_rows, model_interiors, model_truth, model_lasts = _model(
            rng, np.random.default_rng([seed, _LAST_STREAM, index]), index, brands[index % len(brands)],
            store_codes, len(rows))
        rows += model_rows
        interiors.update(model_interiors)
        truth.append(model_truth)
        lasts.update(model_lasts)
    return SyntheticCatalogue(rows, interiors, truth, store_codes, lasts)


def true_last(catalogue: SyntheticCatalogue, sku: str) -> LastSpec:
    """The last that size `sku` is really built on, scanned or not: the simulator's truth, never graded by the
    importer. The model's master last (its middle size, standard fitting) graded by its brand's law to the size's
    nominal foot and width fitting (`Grade`); ski boots: a whole and a half Mondopoint size share the shell of the
    half size."""
    if sku not in catalogue.lasts:
        raise SimulatorError(f"SKU {sku!r} is not in this synthetic catalogue: take one of its rows' SKUs")
    return catalogue.lasts[sku]


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


def _brands(rng: np.random.Generator, grading_rng: np.random.Generator, count: int) -> list[_Brand]:
    """A quarter run small (about -5 mm), a quarter large (+5 mm), half about true; each grades its own way."""
    brands = []
    for name in _BRAND_WORDS[:count]:
        tendency = rng.choice(["small", "true", "true", "large"])
        centre = {"small": -5.0, "true": 0.0, "large": 5.0}[tendency]
        brands.append(_Brand(name, str(tendency), float(centre + rng.normal(0.0, 1.5)), _grading_law(grading_rng)))
    return brands


def _grading_law(rng: np.random.Generator) -> GradingLaw:
    ranges = list(FITTING_RANGES)
    fittings = ranges[int(rng.choice(len(ranges), p=list(FITTING_RANGES.values())))]
    return GradingLaw(round(float(np.clip(rng.normal(*GIRTH_PER_SIZE_MM), *GIRTH_PER_SIZE_RANGE_MM)), 3),
                      round(float(np.clip(rng.normal(*GIRTH_PER_FITTING_MM), *GIRTH_PER_FITTING_RANGE_MM)), 3),
                      fittings)


def _model(rng, last_rng, index: int, brand: _Brand, stores: tuple[str, ...],
           ean_start: int) -> tuple[list[dict], dict[str, Mesh], ModelTruth, dict[str, LastSpec]]:
    category = str(rng.choice(list(_CATEGORY_SHARE), p=list(_CATEGORY_SHARE.values())))
    genders = list(_RUNS[category])
    gender = str(rng.choice(genders))
    level = str(rng.choice(_LEVELS))
    (allow_mean, allow_sd), collar, toe_box, base_price = _CATEGORY[category]
    allowance = _SKI_ALLOWANCE_BY_LEVEL[level] if category == "ski" else rng.normal(allow_mean, allow_sd)
    model_bias = float(rng.normal(0.0, 1.5))
    length_bias = max(brand.length_bias_mm + model_bias, MIN_FREE_LENGTH_MM - allowance)  # no toe-crushers
    girth_bias = float(rng.normal(0.0, 3.0))
    toe_shape = str(rng.choice(list(TOE_SHAPES)))
    code = f"{brand.name[:2].upper()}{1000 + index}"
    name = f"{rng.choice(_NAME_WORDS)} {rng.choice(_NAME_WORDS)} {int(rng.integers(1, 9))}"
    system, first, last, step = _RUNS[category][gender]
    labels = np.arange(first, last + step / 2, step)
    widths = list(brand.grading.fittings) if category in MULTI_WIDTH_CATEGORIES and \
        rng.random() < MULTI_WIDTH_SHARE else ["standard"]
    middle = labels[len(labels) // 2]
    scanned = {middle} | ({labels[1], labels[-2]} if rng.random() < 0.3 else set())
    price = f"{max(19.0, round(base_price * rng.lognormal(0.0, 0.25) / 10) * 10 - 0.05):.2f}"
    common = dict(brand=brand.name, model_code=code, model_name=name, category=category, gender=gender,
                  use=_USE[category], level=level, price=price, currency="EUR",
                  season=str(rng.choice(["SS25", "FW25", "all"])), size_system=system,
                  attributes=_attributes(rng, category))
    family = str(last_rng.choice(list(FAMILY_SHARES), p=list(FAMILY_SHARES.values())))
    master = LastSpec(
        foot_length_mm=_true_foot_length_mm(category, system, middle), allowance_mm=float(allowance),
        length_bias_mm=length_bias, girth_bias_mm=girth_bias, collar_height_mm=collar,
        toe_box_height_mm=toe_box + float(rng.normal(0.0, 1.5)), toe_shape=toe_shape,
        toe_offset_mm=float(rng.uniform(4.0, 9.0)), family=family,
        donor=_donor(last_rng, gender) if family == "foot" else Donor())
    rows, interiors, lasts, scanned_skus = [], {}, {}, []
    for width in widths:
        for label in labels:
            size = _label_text(label)
            sku = f"{code}-{width[0].upper()}-{size.replace('.', '')}"
            rows.append(dict(common, sku=sku, ean=_ean(ean_start + len(rows)), width=width, size=size,
                             stock=_stock(rng, stores, abs(label - middle) / (last - first + step))))
            lasts[sku] = _graded_last(master, brand.grading, _true_foot_length_mm(category, system, label), width)
            if width == "standard" and label in scanned:
                by_sku = rng.random() < 0.5  # retailers name scans either way
                stem = sku if by_sku else f"{brand.name} {code} {system} {size}"
                interiors[f"{stem.replace(' ', '_')}.ply"] = last_interior(lasts[sku])
                scanned_skus.append(sku)
    truth = ModelTruth(brand.name, code, category, brand.tendency, round(length_bias, 3), round(girth_bias, 3),
                       round(float(allowance), 3), tuple(scanned_skus), family, brand.grading)
    return rows, interiors, truth, lasts


def _true_foot_length_mm(category: str, system: str, label: float) -> float:
    """The foot a size's last is made for: its label's nominal foot; a ski boot's shell is its half size's."""
    if category == "ski" and system == "MP":
        label = math.floor(label) + 0.5
    return SIZE_SYSTEMS[system].foot_length_mm(label)


def _donor(rng: np.random.Generator, gender: str) -> Donor:
    """The foot a model's `foot` last is cut from: the template, or a population foot of the model's sex."""
    if rng.random() < FOOT_DONOR_TEMPLATE_SHARE:
        return Donor()
    sex = _DONOR_SEX.get(gender) or str(rng.choice(["male", "female"]))
    return Donor(int(rng.choice(FOOT_DONOR_SEEDS)), sex)


def _graded_last(master: LastSpec, law: GradingLaw, foot_mm: float, width: str) -> LastSpec:
    """The master last graded by the brand's law to a foot length and width fitting (the master itself for its
    own size and the standard fitting)."""
    fittings = width_steps("standard", width)
    if foot_mm == master.foot_length_mm and fittings == 0:
        return master
    change = law.girth_change_mm(foot_mm - master.foot_length_mm, fittings)
    return replace(master, foot_length_mm=foot_mm, grade=Grade(master.foot_length_mm, change))


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
