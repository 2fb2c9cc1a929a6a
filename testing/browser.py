"""Browser tests of the web pages: a real headless Chromium (the Debian package, driven by Playwright) against the
service on a loopback port (testing/api_world.py).

Fixtures (registered in tests/conftest.py):
- `chromium`: one headless Chromium per test session;
- `screenshot_folder`: where `BrowserPage.screenshot` writes: a temporary folder, so that a test run leaves the
  checkout as it found it, or the folder named by FOOTFIT_SCREENSHOTS to refresh the documentation's pictures
  (`FOOTFIT_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/browser`);
- `browser_page`: a fresh page (BrowserPage) whose every request is recorded; a request to another origin than
  the first page opened is aborted, and the test fails at teardown if there was one, or a console error or an
  uncaught page error that the test did not declare with `expect_console_error(pattern)`.

Helpers: `drawn_pixels(page, selector)` counts the pixels of a WebGL canvas that differ from its background;
`page_load_ms(page)` is the navigation's loadEventEnd - startTime, to compare with PAGE_LOAD_LIMIT_MS;
`contrast_failures(page)` and `small_targets(page)` check the accessibility basics.
"""

from __future__ import annotations

import os
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
SCREENSHOTS_ENV = "FOOTFIT_SCREENSHOTS"
VIEWPORT = {"width": 1280, "height": 900}
MIN_CONTRAST = 4.5
MIN_TARGET_PX = 44
LOAD_WAIT_S = 10
# A bound, not the speed: 10x the 350-650 ms the pages take on loopback on the 2-core development machine, so it
# holds on a loaded machine and still fails a page that waits on a timeout or a stalled request. The figures:
# docs/webshop-tryon.md, Measured.
PAGE_LOAD_LIMIT_MS = 6500


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class BrowserPage:
    """A page with what it did: every request URL, requests to other origins, console errors, page errors."""

    page: object  # playwright.sync_api.Page
    screenshots: Path
    origin: str | None = None
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    allowed_console: list[re.Pattern] = field(default_factory=list)

    def goto(self, url: str) -> None:
        """Open `url`; its origin becomes the only one the page may talk to."""
        self.origin = self.origin or _origin(url)
        self.page.goto(url, wait_until="load")

    def expect_console_error(self, pattern: str) -> None:
        """A console error matching `pattern` is expected (e.g. Chromium logs a refused fetch's 401)."""
        self.allowed_console.append(re.compile(pattern))

    def screenshot(self, name: str) -> Path:
        """The whole page as screenshots/NAME.png, checked to be a PNG of the page's width."""
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        head = path.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
        width, height = struct.unpack(">II", head[16:24])  # the IHDR chunk
        assert width == VIEWPORT["width"] and height >= VIEWPORT["height"], f"{path} is {width} x {height} px"
        return path

    def api_requests(self, path_part: str) -> list[str]:
        return [url for url in self.requests if path_part in url]

    def problems(self) -> list[str]:
        unexpected = [m for m in self.console_errors if not any(p.search(m) for p in self.allowed_console)]
        return ([f"request to another origin: {u}" for u in self.foreign]
                + [f"console error: {m}" for m in unexpected] + [f"page error: {m}" for m in self.page_errors])

    def _route(self, route) -> None:
        url = route.request.url
        if self.origin is None or _origin(url) == self.origin or url.startswith(("data:", "blob:")):
            return route.continue_()
        self.foreign.append(url)
        return route.abort()


@pytest.fixture(scope="package")
def chromium():
    """One headless Chromium for a package of browser tests. Playwright's sync API keeps an event loop running in
    the test thread while it lives, so it must end with the package, before tests that run their own loop."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `bash .ci/setup --test` (it installs the Debian package "
                           f"chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshot_folder(tmp_path_factory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    if not chosen:
        return tmp_path_factory.mktemp("screenshots")
    folder = Path(chosen).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser_page(chromium, screenshot_folder):
    context = chromium.new_context(viewport=VIEWPORT, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(15_000)
    watched = BrowserPage(page, screenshot_folder)
    page.route("**/*", watched._route)
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on("console", lambda msg: msg.type == "error" and watched.console_errors.append(msg.text))
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
    yield watched
    context.close()
    assert not watched.problems(), "\n".join(watched.problems())


def page_load_ms(page) -> float:
    """The page's load time from navigation timing: loadEventEnd - startTime (ms)."""
    deadline = time.monotonic() + LOAD_WAIT_S  # polled from Python: the pages' CSP forbids the eval that
    while True:                                # Playwright's wait_for_function needs
        load_ms = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0];"
                                " return n && n.loadEventEnd > 0 ? n.loadEventEnd - n.startTime : null; })()")
        if load_ms is not None:
            return load_ms
        assert time.monotonic() < deadline, f"the page did not finish loading within {LOAD_WAIT_S} s"
        time.sleep(0.05)


_DRAWN_PIXELS_JS = """([selector, tolerance]) => {
  const source = document.querySelector(selector);
  const copy = document.createElement('canvas');
  copy.width = source.width; copy.height = source.height;
  const ctx = copy.getContext('2d');
  ctx.drawImage(source, 0, 0);
  const data = ctx.getImageData(0, 0, copy.width, copy.height).data;
  const [r0, g0, b0] = [data[0], data[1], data[2]];  // a corner: the background
  let drawn = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.abs(data[i] - r0) + Math.abs(data[i + 1] - g0) + Math.abs(data[i + 2] - b0) > tolerance) drawn++;
  }
  return drawn;
}"""


def drawn_pixels(page, selector: str, tolerance: int = 24) -> int:
    """Pixels of the (WebGL, preserveDrawingBuffer) canvas at `selector` that differ from its corner's colour."""
    return page.evaluate(_DRAWN_PIXELS_JS, [selector, tolerance])


def canvas_signature(page, selector: str) -> str:
    """The canvas's pixels as a data URL, to tell whether a redraw changed the picture."""
    return page.evaluate("(s) => document.querySelector(s).toDataURL('image/png')", selector)


_CONTRAST_JS = """(minimum) => {
  const rgba = (s) => (s.match(/[\\d.]+/g) || [0, 0, 0, 0]).map(Number).concat([1]).slice(0, 4);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c[3] > 0.99) return c;
    }
    return [255, 255, 255, 1];
  };
  const failures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.checkVisibility() || el.closest('.ff-visually-hidden')) continue;
    const fg = rgba(getComputedStyle(el).color), bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < minimum) failures.push(`${node.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
  }
  return failures;
}"""


def contrast_failures(page, minimum: float = MIN_CONTRAST) -> list[str]:
    """Visible texts whose colour against their background (computed styles) is below `minimum`:1 (WCAG)."""
    return page.evaluate(_CONTRAST_JS, minimum)


_TARGETS_JS = """(minimum) => [...document.querySelectorAll('button, select, input, a[href], [role=button]')]
  .filter((el) => el.checkVisibility())
  .map((el) => [el, el.getBoundingClientRect()])
  .filter(([el, r]) => r.width < minimum || r.height < minimum)
  .map(([el, r]) => `${el.tagName.toLowerCase()} '${(el.textContent || el.name || el.id).trim().slice(0, 30)}' `
                    + `${Math.round(r.width)}x${Math.round(r.height)}`)"""


def small_targets(page, minimum: int = MIN_TARGET_PX) -> list[str]:
    """Visible buttons, selects, inputs and links smaller than `minimum` px in width or height."""
    return page.evaluate(_TARGETS_JS, minimum)
