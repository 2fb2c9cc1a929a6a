"""Fit answers for a passport (fitcore.fit.matcher): the top shoes (filters, store stock), the best size of one
product, a try-on. Each answer is also kept as the passport's fit result, which the webshop view shows (a
try-on without its per-point clearance).

Recommendations and sizes are advice (fitcore.fit.advice): with learning, the size and the ranking the learned
state in use picks (api/learning.py), each best size with the chance the customer keeps it and why; for the A/B
holdout, and while nothing learned is in use, the geometry's, with the hand-set prior's chances. Every such answer
names its learning version and the customer's arm; a kept answer is kept per version and arm, so a newly adopted
state changes the answers at once."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from api.access import access
from api.fitting import Fitting, fitting
from api.learning import CustomerAdvice, Learning, learning_service
from api.repository import Repository, fit_results, passports, stores
from api.schemas import ModelFitOut, RecommendationOut, SizeFitOut, TryOnDrawnOut
from api.tryon_view import tryon_drawing
from core.errors import NotFound
from fitcore.fit.advice import Advice
from fitcore.fit.matcher import MatchFilters
from shoe_db.models import CATEGORIES, GENDERS, LEVELS

router = APIRouter(prefix="/passports/{passport_id}", tags=["fit"])
PassportId = Annotated[str, Field(min_length=1, max_length=32)]


@router.get("/recommendations", response_model=list[RecommendationOut],
            summary="The best shoes for these feet (each in its best size) after the filters; with a store, only "
                    "what it has in stock in that size")
def recommendations(passport_id: PassportId,
                    n: Annotated[int, Query(ge=1, le=20)] = 3,
                    category: Literal[CATEGORIES] | None = None,
                    gender: Literal[GENDERS] | None = None,
                    use: Annotated[str | None, Query(max_length=80)] = None,
                    level: Literal[tuple(lv for lv in LEVELS if lv)] | None = None,
                    price_min: Annotated[float | None, Query(ge=0, le=1e6)] = None,
                    price_max: Annotated[float | None, Query(ge=0, le=1e6)] = None,
                    store: Annotated[str | None, Query(max_length=40, description="one of your store codes; kiosk "
                                                                                  "keys default to theirs")] = None,
                    repo: Repository = Depends(access("recommendations:read")),
                    fit: Fitting = Depends(fitting), learning: Learning = Depends(learning_service)) -> Response:
    record = passports.read(repo, passport_id, purpose="recommendations", commit=False)  # audited with the answer
    fit.sync(repo.session.connection(), repo.tenant_id)
    store = store or stores.code_of(repo, repo.principal.store_id)
    if store:
        stores.id_of(repo, store)  # another tenant's store is not found
    filters = MatchFilters(category=category, gender=gender, use=use, level=level, price_min=price_min,
                           price_max=price_max, store=store)
    advice = learning.for_customer(repo, record.customer_id)

    def top() -> str:
        m = fit.searched(record)
        if store and store not in m.matcher.catalogue.stock:  # the tenant's store, with nothing in stock
            return "[]"
        advisor = learning.advisor(repo, m.matcher, advice, record.customer_id)
        return _dump([RecommendationOut.model_validate(a.recommendation, from_attributes=True).model_copy(
                      update={"fit": _advised(a.advice, advice)}) for a in advisor.top(m.feet, n, filters, m.search)])

    request = ("recommendations", n, filters, advice.version, advice.arm, repo.principal.is_kiosk)
    answer, computed = fit.answer(record, request, top)
    if computed:  # a kept answer is stored already: a rescan or a catalogue change makes a new one
        fit_results.save(repo, record, "recommendations", {"n": n, **filters.__dict__}, answer)
    else:
        repo.commit()
    return Response(answer, media_type="application/json")  # validated when made: sent as it was kept


@router.get("/sizes/{model_id}", response_model=ModelFitOut, summary="The best size of one product for these feet")
def size_for_product(passport_id: PassportId, model_id: int,
                     repo: Repository = Depends(access("recommendations:read")),
                     fit: Fitting = Depends(fitting), learning: Learning = Depends(learning_service)) -> ModelFitOut:
    record = passports.read(repo, passport_id, purpose="size for a product", commit=False)  # audited with the answer
    fit.sync(repo.session.connection(), repo.tenant_id)
    m = fit.searched(record)
    advice = learning.for_customer(repo, record.customer_id)
    advised = learning.advisor(repo, m.matcher, advice, record.customer_id).best_size(m.feet, model_id, m.search)
    if advised is None:
        raise NotFound(f"model {model_id} has no size with an interior: the matcher cannot size it")
    result = _advised(advised, advice)
    fit_results.save(repo, record, "size", {"model_id": model_id}, _dump(result))
    return result


@router.get("/tryon", response_model=TryOnDrawnOut,
            summary="Virtual try-on of one product in one size: both feet's region verdicts and the clearance at "
                    "every foot point (mm); with drawing=true also the feet placed in the shoe, to draw")
def tryon(passport_id: PassportId, model_id: Annotated[int, Query()], size_id: Annotated[int, Query()],
          drawing: Annotated[bool, Query(description="add the feet placed in the shoe (thinned to 3,000 points "
                                                     "each, shoe frame) and the interior's cross-sections")] = False,
          per_point: Annotated[bool, Query(description="false: leave out the clearance at every point of the "
                                                       "passport's PLY (24,000 numbers), e.g. when only the "
                                                       "drawing is wanted")] = True,
          repo: Repository = Depends(access("recommendations:read")),
          fit: Fitting = Depends(fitting)) -> Response:
    record = passports.read(repo, passport_id, purpose="try-on", commit=False)  # audited with the answer
    fit.sync(repo.session.connection(), repo.tenant_id)
    matcher, feet = fit.matcher(), fit.feet(record)
    tried = matcher.tryon(feet, model_id, size_id)
    result = TryOnDrawnOut.model_validate(
        {**tried.to_dict(per_point),
         "drawing": tryon_drawing(matcher, feet, tried, fit.drawn_points(record)) if drawing else None})
    kept = result.model_dump(mode="json", exclude={"left": {"clearance_mm", "in_shoe"},
                                                   "right": {"clearance_mm", "in_shoe"}, "drawing": True})
    fit_results.save(repo, record, "tryon", {"model_id": model_id, "size_id": size_id}, json.dumps(kept))
    # validated when made; sent as is (FastAPI would dump, validate and encode the ~170 kB drawing once more)
    return Response(result.model_dump_json(), media_type="application/json")


def _advised(advised: Advice, advice: CustomerAdvice) -> ModelFitOut:
    """The advised fit with the chance each size is kept, why, and which learning and arm it came from."""
    out = ModelFitOut.model_validate(advised.fit, from_attributes=True)

    def size(fit: SizeFitOut | None, chance: float | None) -> SizeFitOut | None:
        return None if fit is None else fit.model_copy(update={"keep_probability": _rounded(chance)})

    return out.model_copy(update={
        "keep_probability": _rounded(advised.keep_probability), "reasons": list(advised.reasons),
        "learning_version": advice.version, "advice_arm": advice.arm,
        "size_down": size(out.size_down, advised.size_down_keep_probability),
        "size_up": size(out.size_up, advised.size_up_keep_probability)})


def _rounded(chance: float | None) -> float | None:
    return None if chance is None else round(chance, 3)


def _dump(result) -> str:
    if isinstance(result, list):
        return json.dumps([r.model_dump(mode="json") for r in result])
    return result.model_dump_json()
