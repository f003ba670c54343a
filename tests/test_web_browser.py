"""The web interface in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by selenium against `lakota serve` subprocesses on 127.0.0.1.

Each test leaves a screenshot in build/test-artifacts/. Without the browser the tests are
skipped, except under ``CI=true`` where they fail (``make test`` installs the browser).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import lakota_server
from test_web import CORRECTED, TOKEN, make_web_repo, prices

from lakota import Repo

ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--window-size=1200,900",
]
WAIT = 30


def unavailable(reason: str) -> None:
    """Skip, or fail under CI=true: a CI run must not pass without its browser tests."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Browser tests cannot run under CI=true: {reason}")
    pytest.skip(reason)


def find_browser() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        unavailable("chromium and chromedriver are not installed (apt-get install chromium "
                    "chromium-driver, or make test as root)")  # fmt: skip
    return chromium, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[test]')")
    chromium, driver_path = find_browser()
    os.environ["SE_OFFLINE"] = "true"  # selenium manager: never download, never report
    os.environ["SE_AVOID_STATS"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator:
    """The browser, with no cookie and no console message left from the test before;
    a screenshot of where the test ended is saved in build/test-artifacts/."""
    browser.delete_all_cookies()
    browser.get_log("browser")
    yield browser
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))


@pytest.fixture(scope="module")
def web_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return make_web_repo(tmp_path_factory.mktemp("browser") / "repo")


@pytest.fixture(scope="module")
def site(web_repo: Repo) -> Iterator[str]:
    """A read-only server without a token: yields the interface's URL."""
    with lakota_server(f"demo {web_repo.pod.path}", "--read-only") as url:
        yield url + "/ui"


@pytest.fixture(scope="module")
def guarded_site(web_repo: Repo) -> Iterator[str]:
    with lakota_server(f"demo {web_repo.pod.path}", "--token", TOKEN) as url:
        yield url + "/ui"


def console_errors(driver, allowed: Callable[[str], bool] = lambda message: False) -> list:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not allowed(entry["message"])
    ]


def wait_for(driver, script: str, timeout: float = WAIT):
    """Wait until the JavaScript expression is truthy; return its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(f"return {script}"))


def series_url(site: str, collection: str, series: str, **extra: str) -> str:
    from urllib.parse import urlencode

    query = urlencode({"repo": "demo", "collection": collection, "series": series, **extra})
    return f"{site}/series?{query}"


def plot_requests(driver) -> list[str]:
    script = "return performance.getEntriesByType('resource').map(e => e.name)"
    return [name for name in driver.execute_script(script) if "/api/plot?" in name]


def colored_pixels(driver, color: str) -> int:
    """Pixels of the chart's canvas within a small distance of `color` (``#rrggbb``)."""
    script = """
    const canvas = document.querySelector('#chart canvas');
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const want = [1, 3, 5].map(i => parseInt(arguments[0].slice(i, i + 2), 16));
    let count = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] > 200 && Math.abs(pixels[i] - want[0]) < 24
          && Math.abs(pixels[i + 1] - want[1]) < 24 && Math.abs(pixels[i + 2] - want[2]) < 24)
        count += 1;
    }
    return count;
    """
    return driver.execute_script(script, color)


# --- tests ---------------------------------------------------------------------------------


def test_browse_repositories_collections_and_series(page, site: str) -> None:
    from selenium.webdriver.common.by import By

    page.get(site + "/")
    page.find_element(By.LINK_TEXT, "demo").click()
    rows = page.find_elements(By.CSS_SELECTOR, "#collections tbody tr")
    assert [row.find_element(By.TAG_NAME, "a").text for row in rows] == [
        "long", "prices", "sensors", "words"
    ]  # fmt: skip
    assert "300" in rows[2].text and "x* int64" in rows[2].text
    page.find_element(By.LINK_TEXT, "sensors").click()
    assert page.find_element(By.ID, "series-count").text == "1–50 of 300 series"
    box = page.find_element(By.ID, "q")
    box.send_keys("sensor-2")
    box.submit()
    wait_for(page, "document.getElementById('series-count').textContent.includes('matching')")
    assert page.find_element(By.ID, "series-count").text.startswith("1–50 of 100 series")
    page.find_element(By.ID, "next").click()
    labels = [item.text for item in page.find_elements(By.CSS_SELECTOR, "#series li")]
    assert labels[0] == "sensor-250" and labels[-1] == "sensor-299"
    page.find_element(By.LINK_TEXT, "sensor-250").click()
    wait_for(page, "window.lakotaView && window.lakotaView.done.rows >= 1")
    assert console_errors(page) == []


def test_chart_draws_every_value_column(page, site: str) -> None:
    page.get(series_url(site, "prices", "BE"))
    wait_for(page, "window.lakotaView && window.lakotaView.done.plot >= 1")
    labels = page.execute_script("return window.lakotaView.chart.series.map(s => s.label)")
    assert labels == ["timestamp", "price", "volume"]
    strokes = page.execute_script(
        "return window.lakotaView.chart.series.slice(1).map(s => s._stroke)"
    )
    assert all(colored_pixels(page, color) > 200 for color in strokes), strokes
    assert page.execute_script("return window.lakotaView.chart.data[1].length") == 1000
    legend = page.execute_script("return document.querySelectorAll('.u-legend .u-series').length")
    assert legend == 3
    assert console_errors(page) == []


def test_legend_hides_a_column(page, site: str) -> None:
    from selenium.webdriver.common.by import By

    page.get(series_url(site, "prices", "BE"))
    wait_for(page, "window.lakotaView && window.lakotaView.done.plot >= 1")
    volume_color = page.execute_script("return window.lakotaView.chart.series[2]._stroke")
    assert colored_pixels(page, volume_color) > 200
    page.find_elements(By.CSS_SELECTOR, ".u-legend .u-series")[2].click()
    assert page.execute_script("return window.lakotaView.chart.series[2].show") is False
    assert colored_pixels(page, volume_color) == 0
    assert console_errors(page) == []


def test_zoom_asks_the_server_for_the_visible_range_and_redraws(page, site: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page.get(series_url(site, "long", "wave"))
    wait_for(page, "window.lakotaView && window.lakotaView.done.plot >= 1")
    first = page.execute_script("return window.lakotaView.plot")
    assert first["rows"] == 100_000 and first["downsampled"] and max(first["y"][0]) == 40.0
    assert len(plot_requests(page)) == 1
    over = page.find_element(By.CSS_SELECTOR, "#chart .u-over")
    actions = ActionChains(page).move_to_element_with_offset(over, -200, 0).click_and_hold()
    actions.move_by_offset(150, 0).release().perform()
    wait_for(page, "window.lakotaView.done.plot >= 2")
    zoomed = page.execute_script("return window.lakotaView.plot")
    start, stop = (float(page.execute_script(f"return window.lakotaView.state.{k}"))
                   for k in ("start", "stop"))  # fmt: skip
    assert 0 < start < stop < 100_000 and zoomed["rows"] < first["rows"]
    assert min(zoomed["x"]) >= start and max(zoomed["x"]) <= stop
    request = plot_requests(page)[-1]
    assert "start=" in request and "stop=" in request and len(plot_requests(page)) == 2
    scale = page.execute_script("return [window.lakotaView.chart.scales.x.min, "
                                "window.lakotaView.chart.scales.x.max]")  # fmt: skip
    assert scale == pytest.approx([start, stop])
    assert "start=" in page.current_url  # the view can be shared
    page.execute_script(
        "arguments[0].dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: "
        "arguments[0].getBoundingClientRect().left + 300, bubbles: true, cancelable: true}))",
        over,
    )
    wait_for(page, "window.lakotaView.done.plot >= 3")
    narrower = float(page.execute_script("return window.lakotaView.state.stop")) - float(
        page.execute_script("return window.lakotaView.state.start")
    )
    assert narrower == pytest.approx((stop - start) * 0.75)
    page.find_element(By.ID, "reset").click()
    wait_for(page, "window.lakotaView.done.plot >= 4")
    assert page.execute_script("return window.lakotaView.plot.rows") == 100_000
    assert console_errors(page) == []


def test_range_picker_and_table_pages(page, site: str) -> None:
    from selenium.webdriver.common.by import By

    page.get(series_url(site, "prices", "FR"))
    wait_for(page, "window.lakotaView && window.lakotaView.done.rows >= 1")
    assert page.find_element(By.ID, "row-status").text == "rows 1–50 of 1000"
    page.find_element(By.ID, "next").click()
    wait_for(page, "window.lakotaView.done.rows >= 2")
    assert page.find_element(By.ID, "row-status").text == "rows 51–100 of 1000"
    for field, value in (("from", "2024-03-02T00:00:00"), ("to", "2024-03-02T05:00:00")):
        page.execute_script("document.getElementById(arguments[0]).value = arguments[1]",
                            field, value)  # fmt: skip
    page.find_element(By.ID, "apply").click()
    wait_for(page, "window.lakotaView.done.rows >= 3 && window.lakotaView.done.plot >= 2")
    assert page.find_element(By.ID, "row-status").text == "rows 1–6 of 6"
    first_cell = page.find_element(By.CSS_SELECTOR, "#rows tbody tr td").text
    assert first_cell == "2024-03-02T00:00:00"
    csv = page.find_element(By.ID, "csv").get_attribute("href")
    assert "format=csv" in csv and "start=" in csv
    assert console_errors(page) == []


def test_a_text_index_shows_rows_without_a_chart(page, site: str) -> None:
    from selenium.webdriver.common.by import By

    page.get(series_url(site, "words", "fr"))
    wait_for(page, "window.lakotaView && window.lakotaView.done.rows >= 1")
    assert not page.find_element(By.ID, "chart").is_displayed()
    assert "No numeric column" in page.find_element(By.ID, "chart-status").text
    cells = [cell.text for cell in page.find_elements(By.CSS_SELECTOR, "#rows tbody td")]
    assert cells == ["chat", "3", "chien", "5"]
    assert console_errors(page) == []


def test_time_travel_changes_the_values_shown(page, site: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    page.get(series_url(site, "prices", "BE"))
    wait_for(page, "window.lakotaView && window.lakotaView.done.rows >= 1")
    cell = "document.querySelectorAll('#rows tbody tr')[2].children[1].textContent"
    assert page.execute_script(f"return {cell}") == str(CORRECTED).removesuffix(".0")
    assert page.execute_script("return window.lakotaView.chart.data[1][2]") == CORRECTED
    picker = Select(page.find_element(By.ID, "rev"))
    wait_for(page, "document.getElementById('rev').options.length === 3")
    picker.select_by_index(2)  # the oldest revision
    wait_for(page, "window.lakotaView.done.rows >= 2 && window.lakotaView.done.plot >= 2")
    original = prices(50.0)["price"][2]
    assert page.execute_script("return window.lakotaView.chart.data[1][2]") == original
    assert float(page.execute_script(f"return {cell}")) == original
    shared = page.current_url
    assert "rev=" in shared
    page.get(shared)  # the URL carries the revision
    wait_for(page, "window.lakotaView && window.lakotaView.done.plot >= 1")
    assert page.execute_script("return window.lakotaView.chart.data[1][2]") == original
    assert Select(page.find_element(By.ID, "rev")).first_selected_option.text.endswith("Z")
    assert console_errors(page) == []


def test_login_with_a_wrong_token_fails_and_the_right_one_opens_the_page(
    page, guarded_site: str
) -> None:
    from selenium.webdriver.common.by import By

    page.get(series_url(guarded_site, "prices", "NL"))
    assert "/ui/login?next=" in page.current_url
    page.find_element(By.ID, "token").send_keys("wrong-token")
    page.find_element(By.ID, "login").click()
    assert page.find_element(By.ID, "login-error").text == "Wrong token."
    assert page.get_cookies() == []
    page.find_element(By.ID, "token").send_keys(TOKEN)
    page.find_element(By.ID, "login").click()
    wait_for(page, "window.lakotaView && window.lakotaView.done.plot >= 1")
    assert "/ui/series?" in page.current_url and "NL" in page.current_url
    (cookie,) = page.get_cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    assert page.execute_script("return document.cookie") == ""
    assert TOKEN not in page.page_source and TOKEN not in page.current_url
    assert console_errors(page, allowed=lambda message: "401" in message) == []


def test_a_read_only_server_refuses_changes_from_the_page(page, site: str, web_repo: Repo) -> None:
    page.get(series_url(site, "prices", "BE"))
    wait_for(page, "window.lakotaView && window.lakotaView.done.plot >= 1")
    before = sorted(str(path) for path in Path(str(web_repo.pod.path)).rglob("*"))
    statuses = page.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const host = location.origin;
        Promise.all([
          fetch(host + '/demo/write?path=evil', {method: 'POST', body: 'x'}),
          fetch(host + '/demo/rm?path=.&recursive=true', {method: 'POST'}),
          fetch(host + '/ui/api/rows?repo=demo&collection=prices&series=BE', {method: 'POST'}),
        ]).then(rs => done(rs.map(r => r.status)));
        """
    )
    assert statuses == [403, 403, 403]  # the read-only server refuses any change first
    assert sorted(str(path) for path in Path(str(web_repo.pod.path)).rglob("*")) == before
    allowed = lambda message: "403" in message or "405" in message  # noqa: E731
    assert console_errors(page, allowed) == []


def test_a_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        unavailable("no chromium")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        unavailable("no chromium")
