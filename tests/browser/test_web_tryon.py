"""The webshop try-on page in a real headless Chromium against the service (a 12-model synthetic catalogue, a
measured passport): opened with a customer session token as the shop's server would open it, never a key; the
try-on's drawing data (`drawing=true`); and the security headers of every page and asset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from api import auth
from api.pages import PAGES
from api.tryon_view import MAX_DRAWN_POINTS, voxel_subsample
from fitcore.fit.clearance import IDENTITY_POSE, placed_clearance_mm
from shoe_db.loading import load_matcher_catalogue
from testing.api_world import POINTS_PER_FOOT, WEBSHOP_SCOPES, World, import_catalogue, world
from testing.browser import (
    PAGE_LOAD_LIMIT_MS,
    canvas_signature,
    contrast_failures,
    drawn_pixels,
    page_load_ms,
    small_targets,
)

SHOP = "https://shop.example"
ASSETS = ("/web/shared/api.js", "/web/shared/footview.js", "/web/shared/footfit.css", "/web/tryon/tryon.js",
          "/web/tryon/tryon.css", "/web/vendor/three/three.module.js", "/web/vendor/three/three.core.js",
          "/web/vendor/three/OrbitControls.js")
CANVAS = "#view canvas"
MIN_DRAWN_PIXELS = 5000  # two feet of ~2,500 points each, 3 px per point, in a 1,100 x 440 view


@dataclass
class Shop:
    """The shop's server: it holds a key with sessions:create and opens customer sessions for the page."""

    w: World
    server_key: str
    passport: str  # customer C1's
    other_passport: str  # customer C2's
    model_id: int  # C1's best model overall

    def api(self, path: str, **params):
        r = self.w.call("A", "webshop", "GET", f"/v1/passports/{self.passport}{path}", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def session(self, loyalty_id: str = "C1") -> dict:
        r = self.w.http.post(f"/v1/customers/{loyalty_id}/sessions",
                             headers={"Authorization": f"Bearer {self.server_key}"})
        assert r.status_code == 201, r.text
        return r.json()

    def url(self, token: str | None = None, passport: str | None = None) -> str:
        """The page's address as the shop's product page links it: the session token in the fragment."""
        token = token or self.session()["token"]
        return f"{self.w.base_url}/tryon?passport={passport or self.passport}&model={self.model_id}#session={token}"

    def keys(self) -> list[str]:
        return [self.server_key] + [key for tenant in self.w.tenants.values() for key in tenant.keys.values()]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    with world(f"sqlite:///{tmp_path_factory.mktemp('tryon') / 'db.sqlite'}", tryon_frame_ancestors=[SHOP]) as w:
        import_catalogue(w.engine, models=12)
        passports = []
        for loyalty_id in ("C1", "C2"):
            w.customer("A", loyalty_id)
            passports.append(w.passport("A", loyalty_id))
        with Session(w.engine) as session:
            _, server_key = auth.create_key(session, "tenant-a", auth.parse_scopes(f"{WEBSHOP_SCOPES},sessions:create"),
                                            1, label="shop server")
        best = w.call("A", "webshop", "GET", f"/v1/passports/{passports[0]}/recommendations", params={"n": 1}).json()
        yield Shop(w, server_key, *passports, best[0]["fit"]["model_id"])


@pytest.fixture
def sent(browser_page) -> list[tuple[str, dict, str]]:
    """Every request the page makes: URL, headers, body."""
    requests = []
    browser_page.page.on("request", lambda r: requests.append((r.url, r.headers, r.post_data or "")))
    return requests


def _no_key_sent(shop: Shop, sent: list) -> None:
    """No request carries an API key, and every one the page authorises carries a customer session token."""
    assert sent
    for url, headers, body in sent:
        assert not any(key in text for key in shop.keys() for text in (url, body, *headers.values())), url
        assert headers.get("authorization", "Bearer ffs_").startswith("Bearer ffs_"), url


def _verdicts(tryon: dict) -> list[str]:
    return [r["verdict"] for pair in zip(tryon["size"]["left"]["regions"], tryon["size"]["right"]["regions"])
            for r in pair]


def _page_verdicts(page) -> list[str]:
    return page.locator("#regions tbody td span").all_inner_texts()


def _open(browser_page, url: str):
    browser_page.goto(url)
    browser_page.page.wait_for_selector("#tryon[data-size-id]")
    return browser_page.page


# --- drawing data of the try-on API --------------------------------------------------------------------------


def test_tryon_drawing_places_thinned_feet_in_the_shoe_frame(shop):
    fit = shop.api(f"/sizes/{shop.model_id}")
    plain = shop.api("/tryon", model_id=shop.model_id, size_id=fit["size_id"])
    assert plain["drawing"] is None  # opt-in: the plain answer stays as it was
    drawn = shop.api("/tryon", model_id=shop.model_id, size_id=fit["size_id"], drawing="true")
    d = drawn["drawing"]
    catalogue = load_matcher_catalogue(shop.w.engine)
    i = int(np.searchsorted(catalogue.size_ids, fit["size_id"]))
    sections, length = catalogue.sections[i].astype(np.float64), float(catalogue.inner_length_mm[i])
    assert d["inner_length_mm"] == pytest.approx(length, abs=0.05)
    stations = np.array([ring["x_mm"] for ring in d["shoe"]])
    assert len(stations) == sections.shape[0] and 0 < stations[0] < stations[-1] < length
    assert all(len(ring["points_mm"]) == sections.shape[1] - 2 for ring in d["shoe"])
    for side in ("left", "right"):
        foot = d[side]
        points = np.array(foot["points_mm"])
        assert foot["points_total"] == POINTS_PER_FOOT and 1000 < len(points) <= MAX_DRAWN_POINTS
        assert len(foot["clearance_mm"]) == len(foot["in_shoe"]) == len(points)
        # the frame: each drawn point's clearance is the interior's clearance at that place of the shoe frame
        expected = placed_clearance_mm(points, sections, length, IDENTITY_POSE)
        inside = np.array(foot["in_shoe"])
        error = np.abs(np.array(foot["clearance_mm"]) - expected)[inside]  # points are rounded to 0.1 mm
        assert np.median(error) < 0.1 and error.max() < 0.5, side
        assert -3 < points[inside, 0].min() < 10 and points[:, 2].min() > -3  # heel at the counter, sole on the insole
        assert np.median(points[:, 1]) == pytest.approx(0, abs=25)  # along the shoe's centre line, not mirrored out
    kept = next(r for r in shop.api("")["fit_results"] if r["kind"] == "tryon")["result"]
    assert "drawing" not in kept


def test_tryon_can_leave_out_the_clearance_of_every_point(shop):
    fit = shop.api(f"/sizes/{shop.model_id}")
    full = shop.api("/tryon", model_id=shop.model_id, size_id=fit["size_id"], drawing="true")
    lean = shop.api("/tryon", model_id=shop.model_id, size_id=fit["size_id"], drawing="true", per_point="false")
    assert len(full["left"]["clearance_mm"]) == POINTS_PER_FOOT
    assert lean["left"]["clearance_mm"] is None and lean["right"]["in_shoe"] is None
    assert lean["drawing"] == full["drawing"] and lean["size"] == full["size"]  # only the per-point lists go


def test_tryon_drawing_flag_must_be_a_boolean(shop):
    r = shop.w.call("A", "webshop", "GET", f"/v1/passports/{shop.passport}/tryon",
                    params={"model_id": shop.model_id, "size_id": 1, "drawing": "maybe"})
    assert r.status_code == 422 and "drawing" in r.json()["detail"]


def test_voxel_subsample_is_deterministic_and_bounded():
    points = np.random.default_rng(3).uniform(0, 200, (20_000, 3))
    for bound in (50, 500, 5000):
        kept = voxel_subsample(points, bound)
        assert len(kept) <= bound and np.all(np.diff(kept) > 0)
        assert np.array_equal(kept, voxel_subsample(points, bound))
    few = points[:10] * 100  # far apart: every point has its own voxel and stays
    assert np.array_equal(voxel_subsample(few, 3000), np.arange(10))


# --- headers -------------------------------------------------------------------------------------------------


def _policy(response) -> dict[str, str]:
    parts = response.headers["content-security-policy"].split("; ")
    return {part.split()[0]: part.split(maxsplit=1)[1] for part in parts}


@pytest.mark.parametrize("path", [*PAGES, *ASSETS])
def test_pages_and_assets_carry_strict_security_headers(shop, path):
    r = shop.w.http.get(path)
    assert r.status_code == 200, path
    policy = _policy(r)
    assert policy["default-src"] == policy["script-src"] == policy["style-src"] == policy["connect-src"] == "'self'"
    assert "unsafe" not in r.headers["content-security-policy"] and "authorization" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"


def test_only_the_try_on_page_may_be_framed_and_only_by_the_configured_shop(shop):
    assert _policy(shop.w.http.get("/tryon"))["frame-ancestors"] == f"'self' {SHOP}"
    for path in ("/kiosk", "/web/shared/api.js"):
        assert _policy(shop.w.http.get(path))["frame-ancestors"] == "'none'"


def test_files_outside_the_web_folder_and_missing_files_are_not_served(shop):
    for path in ("/web/../pages.py", "/web/%2e%2e/pages.py", "/web/shared/missing.js", "/web/", "/tryon/x"):
        assert shop.w.http.get(path).status_code == 404, path


# --- the page in a browser -----------------------------------------------------------------------------------


def test_page_shows_the_recommended_size_verdicts_and_draws_the_feet(shop, browser_page, sent):
    fit = shop.api(f"/sizes/{shop.model_id}")
    page = _open(browser_page, shop.url())
    load_ms = page_load_ms(page)
    print(f"\ntry-on page load: {load_ms:.0f} ms")
    assert load_ms < PAGE_LOAD_LIMIT_MS
    assert fit["size_label"] in page.inner_text("#recommended")
    assert page.get_attribute("#tryon", "data-size-id") == str(fit["size_id"])
    assert _page_verdicts(page) == _verdicts(shop.api("/tryon", model_id=shop.model_id, size_id=fit["size_id"]))
    assert drawn_pixels(page, CANVAS) > MIN_DRAWN_PIXELS
    assert page.evaluate("location.hash") == ""  # the session token does not stay in the address bar
    assert page.locator("input").count() == 0  # no key, passport or product field for a shopper
    assert contrast_failures(page) == [] and small_targets(page) == []
    assert all(url.startswith(shop.w.base_url) for url in browser_page.requests)
    _no_key_sent(shop, sent)
    browser_page.screenshot("tryon")


def test_size_switch_by_keyboard_repeats_the_try_on(shop, browser_page):
    fit = shop.api(f"/sizes/{shop.model_id}")
    other = fit["size_up"] or fit["size_down"]
    page = _open(browser_page, shop.url())
    before = canvas_signature(page, CANVAS), page.inner_text("#size-label"), len(browser_page.api_requests("/tryon"))
    for _ in range(12):  # Tab to the other size's button, then Enter
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.sizeId") == str(other["size_id"]):
            break
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#tryon[data-size-id='{other['size_id']}']")
    assert len(browser_page.api_requests("/tryon")) == before[2] + 1
    assert page.inner_text("#size-label") != before[1] and other["size_label"] in page.inner_text("#size-label")
    assert page.get_attribute(f"#sizes button[data-size-id='{other['size_id']}']", "aria-pressed") == "true"
    assert _page_verdicts(page) == _verdicts(shop.api("/tryon", model_id=shop.model_id, size_id=other["size_id"]))
    assert canvas_signature(page, CANVAS) != before[0] and drawn_pixels(page, CANVAS) > MIN_DRAWN_PIXELS
    browser_page.screenshot("tryon-size-switch")


def test_shoes_that_fit_you_lists_three_models_of_a_category(shop, browser_page, sent):
    expected = shop.api("/recommendations", n=3, category="trail")  # the catalogue has three trail models
    page = _open(browser_page, shop.url())
    page.select_option("#category", "trail")
    page.click("#browse button")
    page.wait_for_selector("#shoes li:nth-child(3)")
    items = page.locator("#shoes li").all_inner_texts()
    assert len(items) == 3 and len(expected) == 3
    for item, shoe in zip(items, expected):
        assert shoe["model_name"] in item and shoe["fit"]["size_label"] in item and shoe["reason"] in item
    page.locator("#shoes li").nth(2).get_by_role("button").click()  # try the third one on
    page.wait_for_selector(f"#tryon[data-size-id='{expected[2]['fit']['size_id']}']")
    assert page.get_attribute("#tryon", "data-model-id") == str(expected[2]["fit"]["model_id"])
    _no_key_sent(shop, sent)


def _refused(browser_page, url: str, status: str, says: str):
    """The page at `url` shows `says` and no fit data."""
    browser_page.expect_console_error(status)  # Chromium logs the refused fetch
    browser_page.goto(url)
    message = browser_page.page.locator("#message")
    expect(message).to_contain_text(says)  # (polls from Python: the page's CSP forbids eval)
    assert browser_page.page.is_hidden("#tryon") and browser_page.page.locator("#shoes li").count() == 0
    return message.inner_text()


def test_another_customers_passport_is_refused(shop, browser_page, sent):
    text = _refused(browser_page, shop.url(passport=shop.other_passport), "404", "Not found")
    assert shop.other_passport in text  # the service's reason: no such passport, as if it did not exist
    assert browser_page.api_requests(shop.other_passport)  # asked, and refused by the service, not by the page
    _no_key_sent(shop, sent)


def test_an_ended_session_shows_a_clear_message(shop, browser_page):
    session = shop.session()
    r = shop.w.http.delete(f"/v1/customers/C1/sessions/{session['id']}",
                           headers={"Authorization": f"Bearer {shop.server_key}"})
    assert r.status_code == 204
    text = _refused(browser_page, shop.url(token=session["token"]), "401", "Your try-on session has ended")
    assert "revoked" in text


def test_the_page_takes_no_key(shop, browser_page, sent):
    key = shop.w.tenants["A"].keys["webshop"]
    browser_page.goto(f"{shop.w.base_url}/tryon?passport={shop.passport}&model={shop.model_id}#session={key}")
    expect(browser_page.page.locator("#message")).to_contain_text("never an API key")
    assert browser_page.page.evaluate("location.hash") == ""
    assert not browser_page.api_requests("/v1/") and browser_page.page.is_hidden("#fitting")
    _no_key_sent(shop, sent)
