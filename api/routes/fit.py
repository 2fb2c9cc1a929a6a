"""Fit answers for a passport (fitcore.matcher): the top shoes (filters, store stock), the best size of one
product, a try-on. Each answer is also kept as the passport's fit result, which the webshop view shows (a
try-on without its per-point clearance)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from fitcore.errors import NotFound
from fitcore.matcher import MatchFilters
from shoe_db.models import CATEGORIES, GENDERS, LEVELS
from api.access import access
from api.fitting import Fitting, fitting
from api.repository import Repository
from api.schemas import ModelFitOut, RecommendationOut, TryOnOut

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
                    fit: Fitting = Depends(fitting)) -> list[RecommendationOut]:
    record = repo.passport(passport_id, purpose="recommendations")
    store = store or repo.store_code(repo.principal.store_id)
    if store:
        repo.store_id(store)  # another tenant's store is not found
    filters = MatchFilters(category=category, gender=gender, use=use, level=level, price_min=price_min,
                           price_max=price_max, store=store)
    result, computed = fit.answer(record, ("recommendations", n, filters), lambda: [
        RecommendationOut.model_validate(r.to_dict()) for r in fit.matcher().top(fit.feet(record), n=n, filters=filters)])
    if computed:  # a kept answer is stored already: a rescan or a catalogue change makes a new one
        repo.save_fit_result(record, "recommendations", {"n": n, **filters.__dict__}, _dump(result))
    return result


@router.get("/sizes/{model_id}", response_model=ModelFitOut, summary="The best size of one product for these feet")
def size_for_product(passport_id: PassportId, model_id: int,
                     repo: Repository = Depends(access("recommendations:read")),
                     fit: Fitting = Depends(fitting)) -> ModelFitOut:
    record = repo.passport(passport_id, purpose="size for a product")
    fits = fit.matcher().best_sizes(fit.feet(record), model_ids=[model_id])
    if not fits:
        raise NotFound(f"model {model_id} has no size with an interior: the matcher cannot size it")
    result = ModelFitOut.model_validate(fits[0].to_dict())
    repo.save_fit_result(record, "size", {"model_id": model_id}, _dump(result))
    return result


@router.get("/tryon", response_model=TryOnOut,
            summary="Virtual try-on of one product in one size: both feet's region verdicts and the clearance at "
                    "every foot point (mm)")
def tryon(passport_id: PassportId, model_id: Annotated[int, Query()], size_id: Annotated[int, Query()],
          repo: Repository = Depends(access("recommendations:read")),
          fit: Fitting = Depends(fitting)) -> TryOnOut:
    record = repo.passport(passport_id, purpose="try-on")
    result = TryOnOut.model_validate(fit.matcher().tryon(fit.feet(record), model_id, size_id).to_dict())
    kept = result.model_dump(mode="json", exclude={"left": {"clearance_mm", "in_shoe"},
                                                   "right": {"clearance_mm", "in_shoe"}})
    repo.save_fit_result(record, "tryon", {"model_id": model_id, "size_id": size_id}, json.dumps(kept))
    return result


def _dump(result) -> str:
    if isinstance(result, list):
        return json.dumps([r.model_dump(mode="json") for r in result])
    return result.model_dump_json()
