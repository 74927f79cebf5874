"""The web app in a real headless browser (Debian's chromium driven by Selenium): the whole flow of issue 26.

sign in, ask, tell a fact, see the answer change, open its history, roll it back, see the old answer
return; a reader sees no edit or rollback controls and a forged POST is refused with nothing changed; an
admin accepts a quarantined edit. Every page visited is saved as a PNG: under ``$FACTAGENT_SCREENSHOTS`` when
set (``FACTAGENT_SCREENSHOTS=docs/web`` makes the README's), else in a temporary folder, so a test run leaves
the checkout as it found it.

The browser is ``/usr/bin/chromium`` with ``/usr/bin/chromedriver`` (``apt-get install chromium
chromium-driver``; .ci/run installs them). Without them the tests skip locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import Served, key

REPO = Path(__file__).resolve().parents[3]
SHOTS: list[Path] = []  # the folder screenshots go to, set by the browser fixture
CHROMIUM = os.environ.get("FACTAGENT_CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("FACTAGENT_CHROMEDRIVER", "/usr/bin/chromedriver")
NEW_CEO = "Jane Webb"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless chromium (1100 x 800), or a skip (a failure in CI) when it is not installed."""
    missing = [p for p in (CHROMIUM, DRIVER) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        message = f"no browser for the web tests: {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # no background networking: on a machine without internet chromium's own connections fail, many at a time
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1100,800",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=DriverService(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(120)
    driver.implicitly_wait(60)  # an element of the next page may take a model call to appear
    target = os.environ.get("FACTAGENT_SCREENSHOTS")
    SHOTS[:] = [REPO / target if target else tmp_path_factory.mktemp("screenshots")]
    SHOTS[0].mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SHOTS[0] / f"{name}.png"))


def _by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def _wait_replaced(driver: Any, element: Any) -> None:
    """Wait until the page holding ``element`` has been replaced by the next one and that has finished loading."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    def replaced(_: Any) -> bool:
        try:
            element.is_enabled()
        except WebDriverException:  # stale, or (chromium, mid-navigation) "node does not belong to the document"
            return True
        return False

    WebDriverWait(driver, 120).until(replaced)
    WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _go(driver: Any, element: Any) -> None:
    """Click ``element`` and wait until the page it leads to has replaced this one."""
    element.click()
    _wait_replaced(driver, element)


def _absent(driver: Any, kind: str, value: str) -> bool:
    """Whether the page has no such element (asked without the implicit wait, which would wait it out)."""
    driver.implicitly_wait(0)
    try:
        return not driver.find_elements(_by(kind), value)
    finally:
        driver.implicitly_wait(60)


def _sign_in(driver: Any, url: str, user: str, shot: str | None = None) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/ui/signin")
    driver.find_element(_by("ID"), "key").send_keys(key(user))
    if shot:
        _shot(driver, shot)
    _go(driver, driver.find_element(_by("CSS_SELECTOR"), "main button[type=submit]"))
    assert driver.current_url.endswith("/ui/chat"), driver.find_element(_by("TAG_NAME"), "main").text


def _ask(driver: Any, url: str, question: str) -> tuple[str, str]:
    driver.get(f"{url}/ui/chat")
    box = driver.find_element(_by("ID"), "question")
    box.send_keys(question)
    _go(driver, box.find_element(_by("XPATH"), "./ancestor::form//button"))
    answer = driver.find_element(_by("CSS_SELECTOR"), "[data-testid=answer]").text
    return answer, driver.find_element(_by("CSS_SELECTOR"), "[data-testid=action]").text


def _tell(driver: Any, url: str, statement: str) -> str:
    driver.get(f"{url}/ui/chat")
    box = driver.find_element(_by("ID"), "statement")
    box.send_keys(statement)
    _go(driver, box.find_element(_by("XPATH"), "./ancestor::form//button"))
    status = driver.find_element(_by("CSS_SELECTOR"), "[data-testid=tell-status]").text
    assert status.startswith("applied"), status
    return str(driver.find_element(_by("CSS_SELECTOR"), "[data-testid=tell-edit]").text.split()[-1])


def _world_ceo(web: Served, index: int) -> tuple[str, str]:
    a = web.agent.wm.graph.facts(relation="company_ceo", namespaces=["world"])[index]
    return a.triple.subject, a.triple.object


def test_tell_changes_the_answer_and_rolling_back_restores_it(browser: Any, web: Served) -> None:
    url = web.url
    subject, _ = _world_ceo(web, 0)
    question = f"Who is the CEO of {subject}?"
    _sign_in(browser, url, "alice", shot="signin")
    before, _ = _ask(browser, url, question)
    assert NEW_CEO not in before
    edit_id = _tell(browser, url, f"The CEO of {subject} is {NEW_CEO}.")
    changed, action = _ask(browser, url, question)
    assert NEW_CEO in changed and action == "kg", (changed, action)
    browser.find_element(_by("TAG_NAME"), "summary").click()  # "why": the signals
    assert "link_score" in browser.find_element(_by("TAG_NAME"), "details").text
    _shot(browser, "chat")
    _go(browser, browser.find_element(_by("LINK_TEXT"), f"edit {edit_id}"))  # a citation links to its edit
    assert edit_id in browser.title
    browser.get(f"{url}/ui/history?subject={subject}")
    assert NEW_CEO in browser.find_element(_by("TAG_NAME"), "main").text
    _shot(browser, "history")
    browser.get(f"{url}/ui/memory?q={subject}")
    _shot(browser, "memory")
    _go(browser, browser.find_element(_by("CSS_SELECTOR"), "main tbody a"))
    assert "Every version" in browser.page_source
    _shot(browser, "fact")
    browser.get(f"{url}/ui/edits")
    _shot(browser, "edits")
    _go(browser, browser.find_element(_by("CSS_SELECTOR"), f"a[href='/ui/edits/{edit_id}/rollback']"))
    _shot(browser, "rollback")
    assert web.agent.pipeline.log.edit(edit_id).status == "applied"  # the confirmation step changed nothing
    _go(browser, browser.find_element(_by("CSS_SELECTOR"), "main form button.danger"))
    assert browser.find_element(_by("CSS_SELECTOR"), "[data-testid=rolled-back]").text
    after, _ = _ask(browser, url, question)
    assert after == before and NEW_CEO not in after


def test_a_reader_sees_no_edit_controls_and_a_forged_post_is_refused(browser: Any, web: Served) -> None:

    url = web.url
    subject, _ = _world_ceo(web, 1)
    _sign_in(browser, url, "alice")
    edit_id = _tell(browser, url, f"The CEO of {subject} is Ray Reader.")
    _sign_in(browser, url, "rita")
    assert _absent(browser, "ID", "statement")  # no tell form
    browser.get(f"{url}/ui/edits")
    assert edit_id in browser.page_source and _absent(browser, "PARTIAL_LINK_TEXT", "Roll back")
    _shot(browser, "edits-reader")
    page = browser.find_element(_by("TAG_NAME"), "main")
    # a forged form (no token) posted from the signed-in browser itself: the cookie goes along, and is not enough
    browser.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "document.body.appendChild(f); f.submit();",
        f"/ui/edits/{edit_id}/rollback",
    )
    _wait_replaced(browser, page)
    assert "Not allowed" in browser.find_element(_by("TAG_NAME"), "h1").text
    _shot(browser, "forged")
    assert web.agent.pipeline.log.edit(edit_id).status == "applied"


def test_an_admin_accepts_a_quarantined_edit(browser: Any, web: Served) -> None:
    url = web.url
    subject, _ = _world_ceo(web, 0)  # valid again: the first test rolled its change back
    held = httpx.post(
        f"{url}/v1/tell",
        json={"statement": f"The CEO of {subject} is Mal Ory."},
        headers={"Authorization": f"Bearer {key('bob')}"},  # bob is untrusted here
        timeout=120,
    ).json()
    assert held["status"] == "quarantined", held
    _sign_in(browser, url, "root")
    _go(browser, browser.find_element(_by("LINK_TEXT"), "Quarantine"))
    _shot(browser, "quarantine")
    _go(browser, browser.find_element(_by("CSS_SELECTOR"), f"button[aria-label='Accept {held['quarantine_id']}']"))
    row = [r for r in browser.find_elements(_by("CSS_SELECTOR"), "tbody tr") if "Mal Ory" in r.text]
    assert row and "approved" in row[0].text
    facts = web.agent.wm.graph.facts(subject, "company_ceo", namespaces=["bob", "world"])
    assert [a.triple.object for a in facts] == ["Mal Ory"]


def test_audits_and_keyboard_navigation(browser: Any, web: Served) -> None:
    from selenium.webdriver.common.keys import Keys

    url = web.url
    _sign_in(browser, url, "alice")
    browser.get(f"{url}/ui/audits")
    _go(browser, browser.find_element(_by("CSS_SELECTOR"), "form[action='/ui/audits'] button"))
    assert "/ui/audits/a-" in browser.current_url
    _shot(browser, "audit")
    browser.get(f"{url}/ui/audits")
    _shot(browser, "audits")
    body = browser.find_element(_by("TAG_NAME"), "body")
    body.send_keys(Keys.TAB)  # the first stop is the skip link; following it lands in the main content
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content"
    skip.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"
