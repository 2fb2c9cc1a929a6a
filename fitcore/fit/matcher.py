"""The fit matcher: which size of which shoe fits a customer's feet, how well, region by region.

The Python API the command line and the service use (docs/fit-model.md):
- `ScannedFeet.load(passport.json)` reads a passport with the foot points beside it (left.ply, right.ply);
- `Matcher(catalogue).best_sizes(feet)`: per model the best size for the pair (the longer foot decides), with
  the fit of one size up and down; `top(feet, n, filters)`: the best n models after the store's filters, with a
  reason a salesperson can say aloud; `tryon(feet, model_id, size_id)`: both feet's region verdicts and the
  clearance at every foot point, for any size;
- `matcher.selling(assortment)`: the same matcher as one retailer's, sharing the interiors: `top` recommends only
  what the retailer sells, filters on its prices and its stores' stock, and answers name its SKUs and prices.

The full search runs over arrays, for the deciding foot: per size run (model + width fitting) the size whose free
toe length is best for the profile (from inner lengths alone), then the score of that size and its neighbours
(one numba pass over all pairs), then the neighbours of each run's best so far, until every run's best size has
both neighbours scored. Typed results (both feet, every region) are built only for the models returned.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from core.errors import CatalogError, MeasurementError, MeshError
from core.vocabulary import REGIONS, SIDES
from fitcore.fit.catalogue import Assortment, MatcherCatalogue
from fitcore.fit.fit_model import (
    FootFit,
    FootShape,
    PairValues,
    SizeTables,
    evaluate_pairs,
    foot_fit,
    heel_room_from_breadths_mm,
    point_clearance_mm,
    poses,
    prepare_foot,
    scores,
)
from fitcore.fit.mailing import MailingProducts
from fitcore.fit.profiles import FitProfiles
from fitcore.scan.passport import MeasurementsModel, Passport

MAX_ROUNDS = 6  # neighbour rounds of the full search; a run's best size moves at most this many sizes
SIGNATURE_SIZES = 64  # sizes the mailing descriptor's heel signature is taken over...
SIGNATURE_ROOM_MM = 30.0  # ...among those with up to this much toe room
_TOE, _HEEL = REGIONS.index("toe"), REGIONS.index("heel")


# --- the customer's feet -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScannedFoot:
    side: str
    points_mm: np.ndarray  # (N, 3) float, foot frame
    measurements: MeasurementsModel

    @cached_property
    def shape(self) -> FootShape:
        """The foot prepared for the matcher (computed once)."""
        m = self.measurements
        return prepare_foot(self.points_mm, self.side, m.length_mm, m.instep_height_mm, m.ball_girth_mm,
                            m.instep_girth_mm, m.ball_width_mm)


@dataclass(frozen=True)
class ScannedFeet:
    passport: Passport
    left: ScannedFoot
    right: ScannedFoot

    @classmethod
    def load(cls, passport_path: str | Path) -> "ScannedFeet":
        """passport.json and the left.ply / right.ply beside it (what `footfit scan` writes), validated."""
        from fitcore.scan.measure import read_points

        path = Path(passport_path)
        passport = Passport.load(path)
        points = {}
        for side in SIDES:
            ply = path.parent / f"{side}.ply"
            if not ply.is_file():
                raise MeasurementError(f"{path}: the passport has no {side}.ply beside it: the matcher needs the foot "
                                       f"points a scan writes with the passport (left.ply, right.ply); copy them "
                                       f"into {path.parent} or scan again")
            try:
                points[side] = read_points(ply)
            except MeshError as e:
                raise MeasurementError(f"{ply}: {e}") from None
        return cls.from_arrays(passport, points["left"], points["right"])

    @classmethod
    def from_arrays(cls, passport: Passport, left_points_mm: np.ndarray, right_points_mm: np.ndarray) -> "ScannedFeet":
        """Both feet from a passport and their points (foot frame, mm); the points are checked here."""
        feet = {}
        for side, points in zip(SIDES, (left_points_mm, right_points_mm)):
            foot = ScannedFoot(side, np.asarray(points, dtype=np.float64),
                               getattr(passport.feet, side).measurements)
            foot.shape  # checks the points now, not in the middle of a match
            feet[side] = foot
        return cls(passport, feet["left"], feet["right"])

    @property
    def deciding_side(self) -> str:
        """The longer foot decides the pair's size (left on a tie)."""
        return "right" if self.right.measurements.length_mm > self.left.measurements.length_mm else "left"

    def foot(self, side: str) -> ScannedFoot:
        return self.left if side == "left" else self.right


# --- results ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeFit:
    """The pair in one size: the deciding foot's score, both feet's fits."""

    size_id: int
    sku: str
    size_label: str
    size_system: str
    width: str
    score: float
    left: FootFit
    right: FootFit


@dataclass(frozen=True)
class ModelFit:
    model_id: int
    size_id: int
    size_label: str
    size_system: str
    width: str
    sku: str
    score: float  # 0..100, the deciding foot's
    deciding_foot: str  # left | right: the longer foot
    left: FootFit
    right: FootFit
    size_down: SizeFit | None  # one size smaller in the same width fitting (None: the run's smallest)
    size_up: SizeFit | None
    fits: bool  # the best size scores at least the profiles' fits_min_score and no region of the deciding foot is tight

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Recommendation:
    fit: ModelFit
    brand: str
    model_code: str
    model_name: str
    category: str
    price: float  # the retailer's price of the recommended size; NaN without a retailer (the operator's view)
    currency: str
    reason: str  # e.g. "toe room 14 mm, ball snug, heel holds"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FootTryOn:
    fit: FootFit
    clearance_mm: np.ndarray  # (N,) float32, aligned with the foot's points
    in_shoe: np.ndarray  # (N,) bool; False: above the cavity's cap behind the instep (the leg)
    pose: np.ndarray  # (cos, sin, dx, dy): how the foot sits in the shoe (fitcore.fit.fit_model.placed_points_mm)


@dataclass(frozen=True)
class TryOn:
    model_id: int
    size: SizeFit
    left: FootTryOn
    right: FootTryOn

    def to_dict(self, per_point: bool = True) -> dict:
        """As plain data; `per_point=False` leaves out the clearance of every point (None), which is most of it."""
        def foot(t: FootTryOn) -> dict:
            return {"fit": asdict(t.fit), "clearance_mm": np.round(t.clearance_mm, 2).tolist() if per_point else None,
                    "in_shoe": t.in_shoe.tolist() if per_point else None}
        return {"model_id": self.model_id, "size": asdict(self.size), "left": foot(self.left),
                "right": foot(self.right)}


@dataclass(frozen=True)
class MatchFilters:
    category: str | None = None
    gender: str | None = None  # men | women | kids; unisex models match men and women
    use: str | None = None
    level: str | None = None
    price_min: float | None = None  # the retailer's price of the recommended size
    price_max: float | None = None
    store: str | None = None  # one of the retailer's: in stock there in the recommended size


# --- the matcher -----------------------------------------------------------------------------------------------


@dataclass
class FitSearch:
    """The search for one pair of feet: the deciding foot's score per size (NaN: not scored) and the best size of
    each model searched. A search over every model (`Matcher.search`) answers any later filters, so a service can
    search once per passport and catalogue and filter per request."""

    decider: int  # 0 left, 1 right
    score: np.ndarray  # (n_sizes,)
    tight: np.ndarray  # (n_sizes,) bool: a region of the deciding foot is tight
    model_best: dict[int, int] = field(default_factory=dict)  # model id -> position of its best size
    complete: bool = False  # every model searched
    _index: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def ranked(self, order: np.ndarray, model_ids: np.ndarray | None = None) -> list[tuple[int, int]]:
        """(model id, position) best score first (the lower model id on a tie), of all models searched or of
        those asked for."""
        ids, positions = self._by_model_id()
        if model_ids is not None:
            at = np.searchsorted(ids, np.asarray(model_ids, dtype=np.int64))
            ids, positions = ids[at], positions[at]
        ranking = np.argsort(-self.score[order[positions]], kind="stable")
        return list(zip(ids[ranking].tolist(), positions[ranking].tolist()))

    def _by_model_id(self) -> tuple[np.ndarray, np.ndarray]:
        """Model ids in order and their best positions (indexed once: a kept search is asked many times)."""
        if self._index is None:
            ids = np.fromiter(self.model_best, dtype=np.int64, count=len(self.model_best))
            positions = np.fromiter(self.model_best.values(), dtype=np.int64, count=len(ids))
            sort = np.argsort(ids)
            self._index = ids[sort], positions[sort]
        return self._index


class Matcher:
    def __init__(self, catalogue: MatcherCatalogue, profiles: FitProfiles | None = None):
        if len(catalogue.size_ids) == 0:
            raise CatalogError("the shoe catalogue is empty: run `footfit catalog generate` or `footfit catalog "
                               "import` first")
        self.catalogue = catalogue
        self.assortment: Assortment | None = None  # a retailer's (`selling`); None: the operator's view
        self.profiles = profiles or FitProfiles.load()
        c = catalogue
        self._sections = np.ascontiguousarray(c.sections)
        self._lengths = c.inner_length_mm.astype(np.float64)
        self._tables = SizeTables.of(self._sections, self._lengths, c.ball_girths_mm)
        nominal = c.nominal_foot_length_mm if len(c.nominal_foot_length_mm) else self._lengths
        width = c.width if len(c.width) else np.full(len(c.size_ids), "standard", dtype=object)
        # size runs: one model in one width fitting, sizes in order of length
        self._order = np.lexsort((nominal, width, c.model_ids))
        m, w = c.model_ids[self._order], width[self._order]
        new_run = np.r_[True, (m[1:] != m[:-1]) | (w[1:] != w[:-1])]
        self._run_start = np.flatnonzero(new_run)
        self._run_end = np.r_[self._run_start[1:], len(m)]
        self._run_of_pos = np.cumsum(new_run) - 1
        self._run_model = m[self._run_start]
        self._sized = np.isin(catalogue.models.model_ids, self._run_model)  # models with a size to fit, in id order
        self._profile = self._profiles_of_sizes()

    def _profiles_of_sizes(self) -> np.ndarray:
        """The profile index of every size (by its model's category and level)."""
        models = self.catalogue.models
        if len(models.model_ids) == 0:
            return np.full(len(self.catalogue.size_ids), self.profiles.index_for(""), dtype=np.int64)
        per_model = np.array([self.profiles.index_for(cat, lvl) for cat, lvl in zip(models.category, models.level)])
        return per_model[models.rows(self.catalogue.model_ids)]

    # --- public API ---

    def selling(self, assortment: Assortment) -> "Matcher":
        """This matcher as one retailer's: what it sells, its SKUs and prices from `assortment` (made over
        this catalogue's rows); the catalogue and all derived from it are shared, not copied, so a search made by
        either answers both."""
        view = copy.copy(self)
        view.assortment = assortment
        return view

    def search(self, feet: ScannedFeet) -> FitSearch:
        """The best size of every model for these feet, kept to answer `top` and `best_sizes` without searching
        again (valid while this matcher's catalogue is)."""
        return self._search(feet, None)

    def best_sizes(self, feet: ScannedFeet, model_ids=None, search: FitSearch | None = None) -> list[ModelFit]:
        """Per model (all, or those asked for) the best size for the pair, best first."""
        ids = None if model_ids is None else self._model_ids_checked(model_ids)
        s = self._searched(feet, ids, search)
        return self._model_fits(feet, s, s.ranked(self._order, ids))

    def top(self, feet: ScannedFeet, n: int = 3, filters: MatchFilters = MatchFilters(),
            search: FitSearch | None = None) -> list[Recommendation]:
        """The n best models after the filters, each in its best size, with a reason to say aloud; for a retailer
        (`selling`), only models whose best size it sells (within the price range, in stock at the store)."""
        allowed = self._allowed_sizes(filters)
        ids = self._filtered_models(filters, allowed)
        s = self._searched(feet, ids, search)
        chosen = []
        for model_id, pos in s.ranked(self._order, ids):
            if allowed is not None and not allowed[self._order[pos]]:
                continue
            chosen.append((model_id, pos))
            if len(chosen) == n:
                break
        return [self._recommendation(fit) for fit in self._model_fits(feet, s, chosen)]

    def tryon(self, feet: ScannedFeet, model_id: int, size_id: int) -> TryOn:
        """Both feet in one size of one model: region verdicts and the clearance at every foot point."""
        c = self.catalogue
        i = int(np.searchsorted(c.size_ids, size_id))
        if i >= len(c.size_ids) or c.size_ids[i] != size_id:
            raise CatalogError(f"size id {size_id} is not in the catalogue (or has no interior): "
                               f"`footfit catalog show MODEL` lists the sizes")
        if c.model_ids[i] != model_id:
            raise CatalogError(f"size id {size_id} belongs to model {c.model_ids[i]}, not to model {model_id}")
        size = self._size_fits(feet, np.array([i]))[i]
        tried = []
        for shape, fit in ((feet.left.shape, size.left), (feet.right.shape, size.right)):
            clearance, in_shoe, pose = point_clearance_mm(shape, c.sections[i], float(self._lengths[i]))
            tried.append(FootTryOn(fit, clearance, in_shoe, pose))
        return TryOn(int(model_id), size, *tried)

    def fits(self, feet: ScannedFeet, model_ids) -> np.ndarray:
        """Per model id asked for: does its best size fit (ModelFit.fits)? The decision the mailing filter makes."""
        ids = self._model_ids_checked(model_ids)
        s = self._search(feet, ids)
        best = np.array([self._order[s.model_best[int(m)]] for m in ids])
        return (s.score[best] >= self.profiles.fits_min_score) & ~s.tight[best]

    def mailing_descriptor(self, feet: ScannedFeet) -> np.ndarray:
        """The deciding foot's compact descriptor for the mailing filter (fitcore.fit.mailing.DESCRIPTOR_FIELDS)."""
        foot = feet.foot(feet.deciding_side)
        shape, m = foot.shape, foot.measurements
        sizes = np.flatnonzero((self._lengths >= shape.length_mm)
                               & (self._lengths <= shape.length_mm + SIGNATURE_ROOM_MM))
        if len(sizes) == 0:
            sizes = np.arange(len(self._lengths))
        sizes = sizes[np.linspace(0, len(sizes) - 1, min(SIGNATURE_SIZES, len(sizes))).round().astype(int)]
        values = self._values([shape], np.zeros(len(sizes), dtype=np.int64), sizes, scoring_only=True)
        pose = poses(shape, self._sections[sizes, :, 0], self._lengths[sizes])
        predicted = heel_room_from_breadths_mm(pose, self._tables.heel_breadths_mm[sizes], self._lengths[sizes],
                                               shape.length_mm, shape.heel_breadths_mm)
        slope, offset = np.polyfit(predicted, values.value_mm[:, _HEEL], 1) if len(sizes) > 2 else (1.0, 0.0)
        return np.array([shape.length_mm, m.ball_girth_mm, m.instep_girth_mm, offset, slope, shape.heel_centre_y_mm,
                         shape.ball_centre_y_mm, shape.tip_y_mm, *shape.heel_breadths_mm, m.ball_width_mm,
                         shape.ball_line_x_mm, shape.ball_line_y_mm, shape.ball_line_angle_rad],
                        dtype=np.float32)

    def mailing_products(self, model_ids) -> MailingProducts:
        """The products (shoe models) of a mailing in the mailing filter's layout."""
        ids = self._model_ids_checked(model_ids)
        runs = [np.flatnonzero(self._run_model == m) for m in ids]
        run_list = np.concatenate(runs)
        sizes = np.concatenate([self._order[self._run_start[r]:self._run_end[r]] for r in run_list])
        run_sizes = self._run_end[run_list] - self._run_start[run_list]
        return MailingProducts(
            model_ids=ids, run_start=np.r_[0, np.cumsum([len(r) for r in runs])].astype(np.int64),
            size_start=np.r_[0, np.cumsum(run_sizes)].astype(np.int64), length_mm=self._lengths[sizes],
            centre_y_mm=self._tables.centre_y_mm[sizes],
            perimeter_mm=self._tables.perimeters_mm[sizes], breadth_mm=self._tables.heel_breadths_mm[sizes],
            ball_breadth_mm=self._tables.ball_breadths_mm[sizes], ball_girth_mm=self._tables.ball_girths_mm[sizes],
            profile=self._profile[sizes].astype(np.int64))

    # --- the full search ---

    def _searched(self, feet: ScannedFeet, model_ids: np.ndarray | None, search: FitSearch | None) -> FitSearch:
        """The given search when it covers every model, else a search of `model_ids` (None: all)."""
        if search is not None and search.complete:
            return search
        return self._search(feet, model_ids)

    def _search(self, feet: ScannedFeet, model_ids: np.ndarray | None) -> FitSearch:
        """Per run, the best size for the deciding foot: the size whose toe room is best by length, its
        neighbours, and the neighbours of the best so far until the best's neighbours are all scored."""
        decider = SIDES.index(feet.deciding_side)
        shape = feet.foot(feet.deciding_side).shape
        runs = np.arange(len(self._run_start))
        if model_ids is not None:
            runs = runs[np.isin(self._run_model, model_ids)]
        n = len(self.catalogue.size_ids)
        s = FitSearch(decider, np.full(n, np.nan), np.zeros(n, dtype=bool), complete=model_ids is None)
        best = self._length_guess(shape, runs)
        best_score = np.full(len(runs), -np.inf)
        slot = np.full(len(self._run_start), -1)  # run -> index into `runs`
        slot[runs] = np.arange(len(runs))
        pending = np.concatenate([best, self._neighbours(best)])
        for _ in range(MAX_ROUNDS):
            pending = np.unique(pending)
            pending = pending[np.isnan(s.score[self._order[pending]])]
            if len(pending) == 0:
                break
            sizes = self._order[pending]
            values = self._values([shape], np.zeros(len(sizes), dtype=np.int64), sizes, scoring_only=True)
            score, verdict = scores(values, self._profile[sizes], self.profiles)
            s.score[sizes], s.tight[sizes] = score, (verdict == 0).any(axis=1)
            best, best_score = self._better(best, best_score, pending, score, slot[self._run_of_pos[pending]])
            # walk on from each run's best and from sizes scoring as well (a ski boot's whole and half size share
            # one shell: stopping at the first of two equal sizes left boots a shell too small)
            level = pending[score >= best_score[slot[self._run_of_pos[pending]]]]
            pending = np.concatenate([self._neighbours(best), self._neighbours(level)])
        for i in np.argsort(s.score[self._order[best]], kind="stable"):  # a model's best run comes last
            s.model_best[int(self._run_model[runs[i]])] = int(best[i])
        return s

    def _length_guess(self, foot: FootShape, runs: np.ndarray) -> np.ndarray:
        """Per run, the position of the size whose free toe length (inner length - foot length) is best."""
        sizes = self._order
        p = self._profile[sizes]
        deviation = (self._lengths[sizes] - foot.length_mm - self.profiles.ideal[p, _TOE]) / self.profiles.unit[p, _TOE]
        penalty = deviation ** 2 * np.where(deviation < 0, self.profiles.tight_weight, 1.0)
        return self._first_per_run(penalty)[runs]

    @staticmethod
    def _better(best: np.ndarray, best_score: np.ndarray, positions: np.ndarray, score: np.ndarray,
                slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each run's best position after newly scored ones (a higher score wins; the smaller size on a tie)."""
        best, best_score = best.copy(), best_score.copy()
        candidates = np.r_[best, positions]
        candidate_score = np.r_[best_score, score]
        candidate_slot = np.r_[np.arange(len(best)), slots]
        ranked = np.lexsort((candidates, -candidate_score, candidate_slot))
        first = ranked[np.r_[True, candidate_slot[ranked][1:] != candidate_slot[ranked][:-1]]]
        best[candidate_slot[first]] = candidates[first]
        best_score[candidate_slot[first]] = candidate_score[first]
        return best, best_score

    def _first_per_run(self, key: np.ndarray) -> np.ndarray:
        """Per run, the position with the lowest key (the first on a tie)."""
        lowest = np.minimum.reduceat(key, self._run_start)
        at_lowest = np.flatnonzero(key == lowest[self._run_of_pos])
        _, first = np.unique(self._run_of_pos[at_lowest], return_index=True)
        return at_lowest[first]

    def _neighbours(self, positions: np.ndarray) -> np.ndarray:
        """The positions one size down and up of each of `positions`, where its run has them."""
        run = self._run_of_pos[positions]
        down, up = positions - 1, positions + 1
        return np.concatenate([down[down >= self._run_start[run]], up[up < self._run_end[run]]])

    def _values(self, shapes: list[FootShape], foot_of_pair: np.ndarray, sizes: np.ndarray,
                scoring_only: bool = False) -> PairValues:
        return evaluate_pairs(shapes, foot_of_pair, sizes, self._tables, self.profiles.negative_weight, scoring_only)

    def _model_ids_checked(self, model_ids) -> np.ndarray:
        ids = np.asarray(list(model_ids), dtype=np.int64)
        unknown = sorted(set(ids.tolist()) - set(self._run_model.tolist()))
        if unknown:
            raise CatalogError(f"unknown shoe model id(s) {unknown[:5]}: not in the catalogue, or without interiors; "
                               f"`footfit catalog list` shows the models")
        return ids

    # --- building results ---

    def _size_fits(self, feet: ScannedFeet, sizes: np.ndarray) -> dict[int, SizeFit]:
        """Both feet's full fits (every region, pressures included) in these sizes, one kernel pass."""
        c = self.catalogue
        sizes = np.unique(sizes)
        foot_of_pair = np.repeat([0, 1], len(sizes))
        size_of_pair = np.tile(sizes, 2)
        values = self._values([feet.left.shape, feet.right.shape], foot_of_pair, size_of_pair)
        score, verdict = scores(values, self._profile[size_of_pair], self.profiles)
        decider = SIDES.index(feet.deciding_side)
        sku = c.sku if self.assortment is None else self.assortment.sku  # the retailer's: "" where it sells none
        out = {}
        for i, size in enumerate(sizes):
            rows = (i, len(sizes) + i)
            left, right = (foot_fit(side, values, row, score[row], verdict[row], int(self._profile[size]),
                                    self.profiles) for side, row in zip(SIDES, rows))
            out[int(size)] = SizeFit(int(c.size_ids[size]), _text(sku, size), _text(c.size_label, size),
                                     _text(c.size_system, size), _text(c.width, size, "standard"),
                                     round(float(score[rows[decider]]), 1), left, right)
        return out

    def _model_fits(self, feet: ScannedFeet, s: FitSearch, chosen: list[tuple[int, int]]) -> list[ModelFit]:
        """ModelFits of the chosen (model id, position) pairs, with the sizes around each."""
        around = []
        for _, pos in chosen:
            run = self._run_of_pos[pos]
            around.append((pos - 1 if pos - 1 >= self._run_start[run] else None,
                           pos + 1 if pos + 1 < self._run_end[run] else None))
        positions = [p for (_, pos), pair in zip(chosen, around) for p in (pos, *pair) if p is not None]
        fits = self._size_fits(feet, self._order[np.array(positions, dtype=np.int64)]) if positions else {}
        out = []
        for (model_id, pos), (down, up) in zip(chosen, around):
            best = fits[int(self._order[pos])]
            decider = best.left if s.decider == 0 else best.right
            out.append(ModelFit(
                int(model_id), best.size_id, best.size_label, best.size_system, best.width, best.sku, best.score,
                SIDES[s.decider], best.left, best.right,
                None if down is None else fits[int(self._order[down])],
                None if up is None else fits[int(self._order[up])],
                bool(s.score[self._order[pos]] >= self.profiles.fits_min_score and decider.verdict != "tight")))
        return out

    def _recommendation(self, fit: ModelFit) -> Recommendation:
        c, models, a = self.catalogue, self.catalogue.models, self.assortment
        price, currency = np.nan, ""
        if a is not None:
            i = int(np.searchsorted(c.size_ids, fit.size_id))
            price, currency = float(a.price[i]), str(a.currency[i])
        words = reason(getattr(fit, fit.deciding_foot))
        if len(models.model_ids) == 0:
            return Recommendation(fit, "", "", "", "", price, currency, words)
        r = int(models.rows(np.array([fit.model_id]))[0])
        return Recommendation(fit, str(models.brand[r]), str(models.code[r]), str(models.name[r]),
                              str(models.category[r]), price, currency, words)

    # --- filters ---

    def _filtered_models(self, f: MatchFilters, allowed: np.ndarray | None) -> np.ndarray:
        """The ids of the models the filters leave, with a size among `allowed` (None: any)."""
        models = self.catalogue.models
        keep = self._sized.copy()
        if f.category:
            keep &= models.category == f.category
        if f.gender:
            keep &= (models.gender == f.gender) | ((models.gender == "unisex") & (f.gender in ("men", "women")))
        if f.use:
            keep &= models.use == f.use
        if f.level:
            keep &= models.level == f.level
        if allowed is not None:
            keep &= np.isin(models.model_ids, self.catalogue.model_ids[allowed])
        return models.model_ids[keep]

    def _allowed_sizes(self, f: MatchFilters) -> np.ndarray | None:
        """(n_sizes,) bool: the sizes a recommendation may be in: those the retailer sells, within the price range,
        in stock at the store. None: any size (the operator's view without a store)."""
        a, c = self.assortment, self.catalogue
        if a is None and (f.price_min is not None or f.price_max is not None):
            raise CatalogError("price filters read a retailer's prices, and this matcher has no retailer's "
                               "assortment: ask through the fit service with the retailer's key, or leave them out")
        allowed = None if a is None else a.sold.copy()
        if f.price_min is not None:
            allowed &= a.price >= f.price_min
        if f.price_max is not None:
            allowed &= a.price <= f.price_max
        if f.store is not None:  # the fit service lets a retailer name only its own stores
            if f.store not in c.stock:
                raise CatalogError(f"store {f.store!r} has nothing in stock in the catalogue: check the store code "
                                   f"(`footfit catalog stock --store CODE`)")
            in_store = np.isin(c.size_ids, c.stock[f.store])
            allowed = in_store if allowed is None else allowed & in_store
        return allowed


def _text(column: np.ndarray, i: int, default: str = "") -> str:
    return str(column[i]) if len(column) else default


def reason(fit: FootFit) -> str:
    """A short sentence a salesperson can say aloud, e.g. "toe room 14 mm, ball snug, heel holds"."""
    toe, ball, instep, heel = (fit.region(r) for r in ("toe", "ball", "instep", "heel"))
    words = [f"toe room {toe.value_mm:.0f} mm" + {"tight": " (short)", "roomy": " (long)"}.get(toe.verdict, "")]
    ideal_ball = 0.5 * sum(ball.good_range_mm)
    narrow = ball.verdict == "tight" and ball.value_mm >= ball.good_range_mm[0]  # tight by its width, not girth
    words.append({"tight": "ball narrow" if narrow else "ball tight", "roomy": "ball roomy"}.get(
        ball.verdict, "ball snug" if ball.value_mm < ideal_ball else "ball comfortable"))
    if instep.verdict != "good":
        words.append(f"instep {instep.verdict}")
    words.append({"tight": "heel tight", "roomy": "heel loose"}.get(heel.verdict, "heel holds"))
    return ", ".join(words)
