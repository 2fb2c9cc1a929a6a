"""The browser fixtures (testing/browser.py), for this package only: Chromium ends with the package."""

from testing.browser import browser_page, chromium, screenshot_folder  # noqa: F401  (fixtures)
