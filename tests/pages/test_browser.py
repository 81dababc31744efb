"""/docs and the /__admin dashboard in a real headless browser: Debian's chromium, driven by Selenium.

The browser is the system's (`make browser` installs it with its driver); nothing is downloaded. The
mock runs in this process behind a loopback server; the dashboard talks to it through the admin API only.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mockserver.config import Config, SelfCheck
from mockserver.domain import FakeClock
from mockserver.testing import ServedMock
from mockserver.web.app import create_app

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="Debian's chromium and chromium-driver are needed: make browser"
)
KEY = "sk-Brows1." + "0123456789abcdef" * 4
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
]
WAIT = 20
# The mock's clock stands still unless the test moves it. On the system clock, a background sync pass
# (due at every multiple of 60 s) fell inside the second after expiry whenever the wall clock crossed a
# minute there, retiring the expired session before the dashboard could show it "(expired)"; the slower
# the machine, the wider that window. 1 s past a minute, the next pass is 59 s after the expiry.
START = 1_800_000_001.0
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"


@pytest.fixture(scope="module")
def mock() -> Iterator[ServedMock]:
    server = ServedMock().start()
    config = Config(keys=(KEY,), admin=True, self_check=SelfCheck.RAISE)
    server.switchboard.app = create_app(config, clock=FakeClock(START))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch_module.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a driver or a browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def wait_for(browser: Any, condition: Callable[[Any], Any], what: str) -> Any:
    return WebDriverWait(browser, WAIT, poll_frequency=0.1).until(condition, message=f"waited {WAIT} s for {what}")


def text_of(browser: Any, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def open_session(mock: ServedMock) -> int:
    reply = requests.post(
        f"{mock.url}/api/v1/session/modelsession?model_id=mistral-31-24b",
        json={"sessionDuration": 600, "directPayment": False, "failover": False},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    return reply.status_code


def test_the_dashboard_arms_a_fault_shows_the_journal_live_and_moves_the_clock(mock: ServedMock, browser: Any) -> None:
    browser.get(f"{mock.url}/__admin")
    wait_for(browser, lambda b: len(Select(b.find_element(By.ID, "fault-kind")).options) > 10, "the fault kinds")
    Select(browser.find_element(By.ID, "fault-kind")).select_by_value("create_fail")
    browser.find_element(By.ID, "fault-count").send_keys("1")
    browser.find_element(By.ID, "arm").click()
    wait_for(browser, lambda b: "create_fail" in text_of(b, "faults"), "the armed fault in the table")

    assert [open_session(mock), open_session(mock)] == [500, 200]
    wait_for(browser, lambda b: "create_fail" not in text_of(b, "faults"), "the used fault to leave the table")
    journal = wait_for(
        browser, lambda b: text_of(b, "journal") if text_of(b, "journal").count("modelsession") == 2 else None, "2 rows"
    )
    assert "500" in journal
    assert "200" in journal
    assert "/__admin/journal" not in journal  # the dashboard's own polling is not journaled
    wait_for(browser, lambda b: "sk-Brows1" in text_of(b, "keys") and "0x" in text_of(b, "keys"), "the session")
    assert "(expired)" not in text_of(browser, "keys")

    advance = browser.find_element(By.ID, "advance-seconds")
    advance.clear()
    advance.send_keys("601")
    browser.find_element(By.ID, "advance").click()
    wait_for(browser, lambda b: "(expired)" in text_of(b, "keys"), "the session to expire")
    advance.clear()
    advance.send_keys("60")  # past the next sync pass, which retires the expired row to the ended sessions
    browser.find_element(By.ID, "advance").click()
    wait_for(browser, lambda b: "… expired" in text_of(b, "keys") and "(expired)" not in text_of(b, "keys"), "retired")
    assert text_of(browser, "error") == ""
    _screenshot(browser, "dashboard.png")


def test_the_docs_page_renders_the_spec_with_no_internet(mock: ServedMock, browser: Any) -> None:
    browser.get(f"{mock.url}/docs")
    wait_for(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) >= 6, "Swagger UI's operations")
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Morpheus API Gateway - session API" in page
    assert "/api/v1/session/modelsession" in page
    scripts = [element.get_attribute("src") for element in browser.find_elements(By.CSS_SELECTOR, "script[src]")]
    assert all(src.startswith(mock.url) for src in scripts), scripts  # every asset from the mock itself
    _screenshot(browser, "docs.png")


def _screenshot(browser: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / name))
