"""Debian's Chromium, headless, driven through its own chromedriver by Selenium: nothing is downloaded.

`make sysdeps` installs `chromium` and `chromium-driver`; without them the browser tests are skipped with a reason
that names the missing one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "chromium"
CHROMEDRIVER = "chromedriver"


def require_chromium() -> tuple[str, str]:
    """The paths of chromium and chromedriver, or a skip naming the tool that is missing."""
    browser, driver = shutil.which(CHROMIUM), shutil.which(CHROMEDRIVER)
    if browser is None:
        pytest.skip("chromium is not installed (make sysdeps installs Debian's chromium)")
    if driver is None:
        pytest.skip("chromedriver is not installed (make sysdeps installs Debian's chromium-driver)")
    return browser, driver


@contextmanager
def headless_chromium(width: int = 1440, height: int = 1000) -> Iterator[WebDriver]:
    """One headless browser with a throwaway profile; quit (browser and driver) on exit, whatever happened."""
    browser, driver_path = require_chromium()
    profile = tempfile.mkdtemp(prefix="wgan-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(driver_path)  # an explicit driver: Selenium Manager never looks for one to download
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            service.stop()
            shutil.rmtree(profile, ignore_errors=True)


def wait_until(driver: WebDriver, script: str, *args: Any, timeout: float = 20.0) -> Any:
    """Run `script` (a JavaScript function body) until it returns something truthy; return that."""
    check: Callable[[WebDriver], Any] = lambda d: d.execute_script(script, *args)  # noqa: E731
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(check, message=f"never true: {script}")


def console_errors(driver: WebDriver) -> list[str]:
    """The console's error entries since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def emulate_width(driver: WebDriver, width: int, height: int = 900) -> None:
    """Lay the page out at `width` CSS pixels (a headless window cannot be made narrower than about 500)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
