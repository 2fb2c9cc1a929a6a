"""Passport records as the API shows them: the summary, the webshop view, the staff view."""

from __future__ import annotations

import json

from api.models import PassportRecord
from api.repository import Repository, fit_results, passports
from api.schemas import FeetView, FitResultOut, FootView, PassportStaffView, PassportSummary, PassportWebshopView
from core.vocabulary import SIDES
from fitcore.scan.passport import Passport


def passport_summary(record: PassportRecord) -> PassportSummary:
    passport = Passport.model_validate_json(record.passport_json)
    return PassportSummary(id=record.id, source=record.source, scanned_at=record.scanned_at,
                           created_at=record.created_at, updated_at=record.updated_at, pair_sizes=passport.pair_sizes)


def webshop_view(repo: Repository, record: PassportRecord) -> PassportWebshopView:
    return PassportWebshopView(**_webshop_fields(repo, record, Passport.model_validate_json(record.passport_json)))


def staff_view(repo: Repository, record: PassportRecord, base_url: str) -> PassportStaffView:
    passport = Passport.model_validate_json(record.passport_json)
    return PassportStaffView(**_webshop_fields(repo, record, passport), customer=passports.loyalty_id_of(repo, record),
                             passport=passport,
                             points={side: f"{base_url}v1/passports/{record.id}/points/{side}" for side in SIDES})


def _webshop_fields(repo: Repository, record: PassportRecord, passport: Passport) -> dict:
    feet = FeetView(**{side: FootView(measurements=getattr(passport.feet, side).measurements,
                                      toe_shape=getattr(passport.feet, side).toe_shape,
                                      sizes=getattr(passport.feet, side).sizes) for side in SIDES})
    results = [FitResultOut(kind=r.kind, request=json.loads(r.request_json), result=json.loads(r.result_json),
                            created_at=r.created_at) for r in fit_results.of_passport(repo, record)]
    return dict(id=record.id, scanned_at=record.scanned_at, updated_at=record.updated_at, feet=feet,
                pair_sizes=passport.pair_sizes, fit_results=results)
