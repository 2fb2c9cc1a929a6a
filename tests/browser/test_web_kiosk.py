"""The kiosk page in a real headless Chromium against the service with a simulated rig (light profile) and a
12-model catalogue in stock in the kiosk's store: a whole session from customer lookup to the recorded choice,
a try recorded in one tap per outcome, the device-failure path with Retry, and the accessibility basics (keyboard
only, touch targets, contrast, a load that leaves the 3D library for later). Every test also fails if a request
leaves the page's origin or the console shows an unexpected error (testing/browser.py). The screenshots kiosk-*.png
go to a temporary folder, or to docs/screenshots when asked (FOOTFIT_SCREENSHOTS, testing/browser.py)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select

from api import tenancy
from api.models import ScanJobRecord
from testing.api_world import World, import_catalogue
from testing.browser import PAGE_LOAD_LIMIT_MS, contrast_failures, drawn_pixels, page_load_ms, small_targets
from testing.kiosk_world import RIG, kiosk_world

# a simulated scan takes ~60 s of one core; on the 2-core machine running the suite in two workers beside other
# work it has taken over 250 s: the caps below catch a scan that never ends, they do not time one
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
SCAN_TIMEOUT_MS = 400_000
MIN_DRAWN_PIXELS = 5000  # two feet of a few thousand points, 3 px each
FAULTS = "disconnect=plate@0.75:6"  # the plate vanishes half-way through the right foot, for 6 s
FAULT_SECONDS = 6

_NON_WHITE_PIXELS_JS = """(id) => {
  const c = document.getElementById(id);
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] < 240 || data[i + 1] < 240 || data[i + 2] < 240) n++;
  return n;
}"""


@contextmanager
def store_world(tmp_path, faults: str = ""):
    """The scans' test world (tenant A's store STORE-A with the calibrated rig RIG, sizes in UK) with a catalogue
    in stock there."""
    with kiosk_world(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, faults=faults, reconnect_window_s=1.0) as w:
        skus = import_catalogue(w.engine, models=12)
        r = w.call("A", "admin", "PUT", "/v1/stores/STORE-A/stock",
                   json={"items": [{"sku": sku, "quantity": 2} for sku in skus]})
        assert r.status_code == 200, r.text
        with Session(w.engine) as session:
            tenancy.set_size_system(session, "tenant-a", "STORE-A", "uk")
        yield w


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with store_world(tmp_path_factory.mktemp("kiosk")) as w:
        yield w


@pytest.fixture(scope="module")
def faulty_store(tmp_path_factory):
    with store_world(tmp_path_factory.mktemp("kiosk-faults"), faults=FAULTS) as w:
        yield w


def sign_in(browser_page, w: World):
    browser_page.goto(f"{w.base_url}/kiosk")
    page = browser_page.page
    page.fill("#key", w.tenants["A"].keys["kiosk"])
    page.press("#key", "Enter")
    page.wait_for_selector("#screen-customer:not([hidden])")
    return page


def look_up(page, loyalty_id: str) -> None:
    page.fill("#loyalty", loyalty_id)
    page.press("#loyalty", "Enter")


def visible_text(page, selector: str) -> str:
    return page.inner_text(selector).strip()


def wait_for_result(page) -> None:
    page.wait_for_selector("#screen-result:not([hidden])", timeout=SCAN_TIMEOUT_MS)
    page.wait_for_selector("#feet-view[data-points]")
    page.wait_for_selector("#shoes li")


def test_a_whole_kiosk_session_from_lookup_to_the_recorded_choice(store, browser_page):
    browser_page.expect_console_error(r"status of 404")  # the lookup of a new customer; camera frames not yet there
    page = sign_in(browser_page, store)
    assert "Store STORE-A" in visible_text(page, "#who")

    look_up(page, "K-1001")
    page.wait_for_selector("#register:not([hidden])")
    assert "No customer with loyalty number K-1001" in visible_text(page, "#register-text")
    page.click("#register-button")
    page.wait_for_selector("#screen-consent:not([hidden])")
    assert "30 days" in visible_text(page, "#screen-consent") and "withdraw" in visible_text(page, "#screen-consent")
    page.click("#consent-form button[type=submit]")  # without the box ticked: refused, nothing recorded
    assert "Without consent to store the scan we cannot scan" in visible_text(page, "#message")
    page.check("#consent-scan")
    page.click("#consent-form button[type=submit]")
    page.wait_for_selector("#screen-scan:not([hidden])")
    consents = store.call("A", "kiosk", "GET", "/v1/customers/K-1001").json()["consent"]
    assert consents == {"scan_storage": True, "webshop": False, "marketing": False}

    page.click("#start")
    progress, screenshot_taken = [], False
    deadline = time.monotonic() + SCAN_TIMEOUT_MS / 1000
    while page.is_hidden("#screen-result") and time.monotonic() < deadline:
        progress.append(int(page.get_attribute("#progress", "aria-valuenow")))
        text = visible_text(page, "#progress-text")
        if not screenshot_taken and "foot" in text and "arm at" in text and page.is_visible("#preview"):
            width = page.evaluate("document.getElementById('preview').naturalWidth")
            assert width == 320, f"the camera preview shows a whole decoded frame, not {width} px"
            assert "kiosk-step-now" in page.get_attribute("#steps li[aria-current=step]", "class")
            browser_page.screenshot("kiosk-scanning")
            screenshot_taken = True
        time.sleep(0.25)
    assert screenshot_taken, "the progress showed a foot, the arm angle and the camera"
    assert progress == sorted(progress) and len(set(progress)) >= 5, f"the progress bar moves forward: {progress}"

    wait_for_result(page)
    assert "UK " in visible_text(page, "#result-title"), "sizes in the store's size system"
    assert drawn_pixels(page, "#feet-view canvas") > MIN_DRAWN_PIXELS, "the 3D view draws both feet"
    assert page.locator("#feet-view .ff-view-label").count() == 6, "length, ball and instep on each foot"
    expect(page.locator("#arch")).to_contain_text("arch index")
    assert page.evaluate(_NON_WHITE_PIXELS_JS, "heatmap") > 2000, "the heat map shows both footprints"
    cards = page.locator("#shoes li.kiosk-shoe")
    assert cards.count() == 3
    for i in range(3):
        card = cards.nth(i)
        assert card.locator("blockquote").inner_text().strip(), "a reason to say aloud"
        assert card.locator("tbody tr").count() == 4 and "Size " in card.inner_text()
    browser_page.screenshot("kiosk-result")
    assert contrast_failures(page) == [] and small_targets(page) == []

    asked = len(browser_page.api_requests("/recommendations"))
    page.select_option("#f-category", "running")  # filters: only running shoes stay
    with page.expect_response(lambda r: "/recommendations" in r.url):  # the first shoe may be a running one already
        page.click("#filters button[type=submit]")
    expect(page.locator("#shoes li.kiosk-shoe").first).to_contain_text("running")
    assert len(browser_page.api_requests("/recommendations")) == asked + 1
    assert "category=running" in browser_page.api_requests("/recommendations")[-1]
    expect(page.locator("#shoes li.kiosk-shoe").filter(has_not_text="running")).to_have_count(0)

    cards.first.get_by_role("button", name="Show in the shoe").click()
    page.wait_for_selector("#in-shoe[data-size-id]")
    first_size = page.get_attribute("#in-shoe", "data-size-id")
    assert drawn_pixels(page, "#in-shoe-view canvas") > MIN_DRAWN_PIXELS
    other = page.locator(f"#in-shoe-sizes button:not([data-size-id='{first_size}'])").first
    other.click()
    page.wait_for_selector(f"#in-shoe:not([data-size-id='{first_size}'])")
    assert page.locator("#in-shoe-regions tbody tr").count() == 4
    browser_page.screenshot("kiosk-in-shoe")
    page.click("#choose")
    expect(page.locator("#chosen")).to_contain_text("Recorded: the customer chose")

    passport = store.call("A", "kiosk", "GET", "/v1/customers/K-1001/passports").json()[0]["id"]
    feedback = store.call("A", "kiosk", "GET", f"/v1/passports/{passport}/feedback").json()
    assert [(f["event"], f["store"]) for f in feedback] == [("chosen", "STORE-A")]
    assert f"(SKU {feedback[0]['sku']})" in visible_text(page, "#chosen"), "the size on screen was recorded"


def test_staff_record_a_try_in_one_tap_and_its_confirmation_goes_with_the_shoe(store, browser_page):
    for loyalty_id in ("K-4004", "K-4005"):
        store.customer("A", loyalty_id)  # with a passport uploaded: no scan needed to show a result
        store.passport("A", loyalty_id)
    browser_page.expect_console_error(r"status of 404")  # an uploaded passport has no pressure map
    page = sign_in(browser_page, store)
    look_up(page, "K-4004")
    page.wait_for_selector("#known:not([hidden])")
    page.click("#last-result")
    wait_for_result(page)
    page.locator("#shoes li.kiosk-shoe").first.get_by_role("button", name="Show in the shoe").click()
    page.wait_for_selector("#in-shoe[data-size-id]")
    best = page.get_attribute("#in-shoe", "data-size-id")
    tried = page.get_by_role("group", name="The customer tried size")
    expect(tried).to_be_visible()
    tried.get_by_role("button", name="Ball pinches").click()
    expect(page.locator("#tried")).to_contain_text("ball pinches")
    assert contrast_failures(page) == [] and small_targets(page) == []
    browser_page.screenshot("kiosk-try")

    passport = store.call("A", "kiosk", "GET", "/v1/customers/K-4004/passports").json()[0]["id"]
    events = store.call("A", "kiosk", "GET", f"/v1/passports/{passport}/feedback").json()
    assert [(e["event"], e["kept"], e["complaint"], e["source"], e["store"]) for e in events] == [
        ("tried", False, {"region": "ball", "direction": "tight"}, "store", "STORE-A")]
    assert events[0]["recommended_sku"] == events[0]["sku"], "the best size was on screen: the advice itself"
    assert f"(SKU {events[0]['sku']})" in visible_text(page, "#tried"), "the size on screen was recorded"

    page.locator(f"#in-shoe-sizes button:not([data-size-id='{best}'])").first.click()  # staff bring another size
    page.wait_for_selector(f"#in-shoe:not([data-size-id='{best}'])")
    expect(page.locator("#tried")).to_have_text("")  # the confirmation was of the other size
    tried.get_by_role("button", name="Kept").focus()
    page.keyboard.press("Enter")  # keyboard only
    expect(page.locator("#tried")).to_contain_text("kept it")
    events = store.call("A", "kiosk", "GET", f"/v1/passports/{passport}/feedback").json()
    assert [(e["kept"], e["complaint"]) for e in events] == [(False, {"region": "ball", "direction": "tight"}),
                                                            (True, None)]
    assert events[1]["sku"] != events[1]["recommended_sku"] == events[0]["sku"], "another size than advised"

    page.click("#new-customer")  # another customer: nothing of the last one's try stays on screen
    look_up(page, "K-4005")
    page.wait_for_selector("#known:not([hidden])")
    page.click("#last-result")
    wait_for_result(page)
    assert visible_text(page, "#tried") == "" and page.is_hidden("#try")


def test_signing_out_mid_scan_asks_to_cancel_it_and_the_next_session_shows_nothing_of_it(store, browser_page):
    """The flow bug: signed out during a scan, the kiosk followed the scan on and showed its result over the next
    customer's screen. Now sign-out asks; a kiosk session shows only what it started."""
    store.customer("A", "K-5001")  # known, with consent: straight to the scan
    browser_page.expect_console_error(r"status of 404")  # camera frames not there yet; the next customer is new
    page = sign_in(browser_page, store)
    look_up(page, "K-5001")
    page.wait_for_selector("#known:not([hidden])")
    page.click("#to-scan")
    page.click("#start")
    expect(page.locator("#progress")).not_to_have_attribute("aria-valuenow", "0", timeout=SCAN_TIMEOUT_MS)
    scan_id = _running_scan(store)

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("#sign-out")  # staff think again: the scan goes on, still on screen
    expect(page.locator("#screen-scan")).to_be_visible()
    assert "K-5001" in asked[0] and "Cancel the scan" in asked[0]
    assert store.call("A", "kiosk", "GET", f"/v1/scans/{scan_id}").json()["state"] == "running"

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#sign-out")
    page.wait_for_selector("#screen-signin:not([hidden])")
    ended = _ended(store, scan_id)
    assert ended["state"] == "cancelled" and ended["passport_id"] is None

    page.fill("#key", store.tenants["A"].keys["kiosk"])
    page.press("#key", "Enter")
    page.wait_for_selector("#screen-customer:not([hidden])")
    look_up(page, "K-5002")
    page.wait_for_selector("#register:not([hidden])")
    page.wait_for_timeout(2000)  # four of the old follower's polls, had it gone on
    assert page.is_visible("#screen-customer") and page.is_hidden("#screen-result")
    assert "cancelled" not in visible_text(page, "#message"), "nothing of the last session's scan"


def _running_scan(w: World) -> str:
    """The id of tenant A's running scan (the only one: one rig)."""
    with Session(w.engine) as session:
        return session.exec(select(ScanJobRecord.id).where(ScanJobRecord.state == "running")).one()


def _ended(w: World, scan_id: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while (scan := w.call("A", "kiosk", "GET", f"/v1/scans/{scan_id}").json())["state"] == "running":
        assert time.monotonic() < deadline, scan
        time.sleep(0.2)
    return scan


def test_a_device_failure_shows_what_to_do_and_retry_keeps_what_was_scanned(faulty_store, browser_page):
    faulty_store.customer("A", "K-2002")  # known, with consent: straight to the scan
    page = sign_in(browser_page, faulty_store)
    browser_page.expect_console_error(r"status of 404")  # camera frames not there yet
    look_up(page, "K-2002")
    page.wait_for_selector("#known:not([hidden])")
    assert "agreed to store scans" in visible_text(page, "#known-text")
    page.press("#to-scan", "Enter")
    page.wait_for_selector("#screen-scan:not([hidden])")
    page.click("#start")
    page.wait_for_selector("#failure:not([hidden])", timeout=SCAN_TIMEOUT_MS)
    failed_at = time.monotonic()
    assert visible_text(page, "#failure-text") == "Pressure plate disconnected: check the cable, then press Retry."
    assert "the standing pressure, the left foot" in visible_text(page, "#failure-kept")
    assert page.evaluate("document.activeElement.id") == "retry", "Retry has the focus"
    assert page.is_visible("#cancel") and page.is_hidden("#start")
    browser_page.screenshot("kiosk-failure")
    scan = faulty_store.call("A", "kiosk", "GET", "/v1/customers/K-2002/passports").json()
    assert scan == [], "nothing stored yet"

    time.sleep(max(0.0, FAULT_SECONDS + 1 - (time.monotonic() - failed_at)))  # the plate is back
    page.keyboard.press("Enter")
    page.wait_for_selector("#failure", state="hidden")
    phases = set()
    deadline = time.monotonic() + SCAN_TIMEOUT_MS / 1000
    while page.is_hidden("#screen-result") and time.monotonic() < deadline:
        phases.update(visible_text(page, "#progress-text").split(" · ")[1:2])  # "37% · right foot · arm at 90°"
        assert page.is_hidden("#failure"), f"the retry failed: {visible_text(page, '#failure-text')}"
        time.sleep(0.2)
    assert "right foot" in phases and not phases & {"standing", "left foot"}, f"kept parts not rescanned: {phases}"
    wait_for_result(page)
    passports = faulty_store.call("A", "kiosk", "GET", "/v1/customers/K-2002/passports").json()
    assert len(passports) == 1 and passports[0]["source"] == "kiosk"
    assert drawn_pixels(page, "#feet-view canvas") > MIN_DRAWN_PIXELS
    expect(page.locator("#arch")).to_contain_text("arch index")


def test_keyboard_only_sign_in_and_lookup_large_targets_contrast_and_a_light_load(store, browser_page):
    store.customer("A", "K-3003")
    browser_page.goto(f"{store.base_url}/kiosk")
    page = browser_page.page
    load_ms = page_load_ms(page)
    print(f"kiosk page load on loopback: {load_ms:.0f} ms")
    assert load_ms < PAGE_LOAD_LIMIT_MS
    later = browser_page.api_requests("/web/kiosk/result.js") + browser_page.api_requests("/web/vendor/three/")
    assert later == [], "the result screen and three.js load at sign-in, not with the page"
    assert contrast_failures(page) == [] and small_targets(page) == []
    browser_page.screenshot("kiosk-signin")

    browser_page.expect_console_error(r"status of 401")  # the refused key
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "key"
    page.keyboard.type("ff_000000000000_wrong")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("The API key was refused")
    assert page.input_value("#key") == "ff_000000000000_wrong", "nothing typed is lost on an error"
    page.fill("#key", "")
    page.keyboard.type(store.tenants["A"].keys["kiosk"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen-customer:not([hidden])")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "loyalty"
    page.keyboard.type("K-3003")
    page.keyboard.press("Enter")
    page.wait_for_selector("#known:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "to-scan"
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen-scan:not([hidden])")
    assert contrast_failures(page) == [] and small_targets(page) == []

    page.reload()  # the session survives a reload of the tab...
    page.wait_for_selector("#screen-customer:not([hidden])")
    page.click("#sign-out")  # ...until staff sign out
    page.wait_for_selector("#screen-signin:not([hidden])")
    assert page.evaluate("sessionStorage.length") == 0 and page.input_value("#key") == ""
    assert all(url.startswith(store.base_url) for url in browser_page.requests)
    assert RIG in store.call("A", "kiosk", "GET", "/v1/stores").json()[0]["kiosks"]
