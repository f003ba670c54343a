"""The web interface (lakota/web): M4 downsampling, the queries, and the HTTP routes.

The routes run in a real `lakota serve` subprocess (`conftest.lakota_server`); the browser
itself is driven in tests/test_web_browser.py.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy
import pytest
from conftest import lakota_server
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lakota import Repo, Schema

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

from lakota.web import data  # noqa: E402  (lakota.web needs the server extra)
from lakota.web.m4 import bucket_starts, m4_rows  # noqa: E402

TOKEN = "w3b-t0ken"
HOURS = 1000
START = numpy.datetime64("2024-03-01T00:00", "s")
SPIKE_AT = 61_234
CORRECTED = 999.0


# --- a repository to look at ---------------------------------------------------------------


def prices(base: float, hours: int = HOURS) -> dict:
    stamps = START + numpy.arange(hours) * numpy.timedelta64(3600, "s")
    values = base + numpy.round(numpy.sin(numpy.arange(hours) / 12.0) * 10, 2)
    return {"timestamp": stamps, "price": values, "volume": numpy.arange(hours) % 7}


def make_web_repo(path: Path) -> Repo:
    """Prices of three markets (BE corrected by a second revision), 300 sensors, a long
    series with one spike, and a text-indexed collection."""
    repo = Repo(str(path))
    clct = repo.create_collection(
        Schema(timestamp="timestamp*", price="float", volume="int"), "prices"
    )
    with clct.multi():
        for market, base in (("BE", 50.0), ("FR", 48.0), ("NL", 52.0)):
            (clct / market).write(prices(base))
    stamps = START + numpy.arange(2, 4) * numpy.timedelta64(3600, "s")
    (clct / "BE").write({"timestamp": stamps, "price": [CORRECTED] * 2, "volume": [0, 0]})
    sensors = repo.create_collection(Schema(x="int*", v="float"), "sensors")
    with sensors.multi():
        for pos in range(300):
            (sensors / f"sensor-{pos:03}").write({"x": [0, 1], "v": [pos, pos + 0.5]})
    wave = numpy.sin(numpy.arange(100_000) / 500.0)
    wave[SPIKE_AT] = 40.0
    long = repo.create_collection(Schema(x="int*", y="float"), "long")
    (long / "wave").write({"x": numpy.arange(100_000), "y": wave})
    words = repo.create_collection(Schema(word="str*", count="int"), "words")
    (words / "fr").write({"word": ["chat", "chien"], "count": [3, 5]})
    return repo


@pytest.fixture(scope="module")
def web_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return make_web_repo(tmp_path_factory.mktemp("web") / "repo")


@pytest.fixture(scope="module")
def server(web_repo: Repo) -> Iterator[str]:
    """The repository served behind a token at /base: yields the interface's URL."""
    folder = str(web_repo.pod.path)
    with lakota_server(f"demo {folder}", "--token", TOKEN, base="/base") as url:
        yield url + "/base/ui"


@pytest.fixture(scope="module")
def open_server(web_repo: Repo) -> Iterator[str]:
    """The same repository, read-only and without a token, at the root."""
    with lakota_server(f"/ {web_repo.pod.path}", "--read-only") as url:
        yield url


# --- M4 ------------------------------------------------------------------------------------

columns = st.integers(1, 3).flatmap(
    lambda n: st.tuples(
        st.integers(1, 400),
        st.lists(
            hnp.arrays("f8", 400, elements=st.floats(-1e6, 1e6, allow_nan=False)),
            min_size=n,
            max_size=n,
        ),
    )
)


@settings(max_examples=60, deadline=None)
@given(
    columns=columns,
    steps=hnp.arrays("i8", 400, elements=st.integers(0, 5)),
    width=st.integers(1, 60),
)
def test_m4_keeps_first_last_and_every_bucket_extreme(columns, steps, width) -> None:
    size, ys = columns
    x = numpy.cumsum(steps)[:size]
    ys = [y[:size] for y in ys]
    rows = m4_rows(x, ys, width)
    assert rows.tolist() == sorted(set(rows.tolist()))
    assert rows[0] == 0 and rows[-1] == size - 1
    assert len(rows) <= max(size if size <= 4 * width else 0, (2 + 2 * len(ys)) * width)
    starts = bucket_starts(x, width) if size > 4 * width else numpy.array([0])
    stops = numpy.append(starts[1:], size)
    for lo, hi in zip(starts, stops):
        kept = rows[(rows >= lo) & (rows < hi)]
        assert lo in kept and hi - 1 in kept
        for y in ys:  # the spikes of every column stay visible in every pixel column
            assert y[kept].min() == y[lo:hi].min()
            assert y[kept].max() == y[lo:hi].max()


def test_m4_on_a_long_series_keeps_the_spike_with_few_points() -> None:
    x = numpy.datetime64("2020-01-01", "s") + numpy.arange(2_000_000)
    y = numpy.zeros(2_000_000)
    y[1_234_567] = -7.0
    y[2_000] = numpy.nan
    rows = m4_rows(x, [y], 1000)
    assert len(rows) <= 4000
    assert 1_234_567 in rows and rows[0] == 0 and rows[-1] == 1_999_999
    assert numpy.nanmin(y[rows]) == -7.0


def test_m4_edge_cases() -> None:
    assert m4_rows(numpy.arange(4), [numpy.ones(4)], 1).tolist() == [0, 1, 2, 3]
    assert m4_rows(numpy.arange(5), [numpy.ones(5)], 1).tolist() == [0, 4]
    same_x = numpy.zeros(100)
    y = numpy.arange(100.0)
    assert {0, 99} <= set(m4_rows(same_x, [y], 5).tolist())
    all_nan = numpy.full(100, numpy.nan)
    assert m4_rows(numpy.arange(100), [all_nan], 5)[-1] == 99
    with pytest.raises(ValueError, match="width"):
        m4_rows(numpy.arange(3), [], 0)
    with pytest.raises(ValueError, match="same length"):
        m4_rows(numpy.arange(3), [numpy.ones(2)], 4)
    with pytest.raises(TypeError, match="x axis"):
        m4_rows(numpy.array(["a"] * 9), [numpy.ones(9)], 1)


# --- the queries ---------------------------------------------------------------------------


def test_collections_and_series_pages(web_repo: Repo) -> None:
    info = {clct["label"]: clct for clct in data.collections_info(web_repo)}
    assert sorted(info) == ["long", "prices", "sensors", "words"]
    assert info["prices"]["series"] == 3 and info["sensors"]["series"] == 300
    assert [c["name"] for c in info["prices"]["schema"]] == ["timestamp", "price", "volume"]
    assert info["prices"]["last_revision"]["leaf"] is True
    sensors = web_repo / "sensors"
    page = data.series_page(sensors, "SENSOR-1", offset=10, limit=20)
    assert page["total"] == 100
    assert page["labels"] == [f"sensor-{pos}" for pos in range(110, 130)]
    assert data.series_page(sensors, "", 290, 50)["labels"][-1] == "sensor-299"
    with pytest.raises(ValueError, match="limit"):
        data.series_page(sensors, "", 0, 0)


def test_revisions_and_time_travel(web_repo: Repo) -> None:
    clct = web_repo / "prices"
    revs = data.revisions(clct)
    assert len(revs) == 2 and revs[0]["leaf"] and not revs[1]["leaf"]
    assert revs[0]["date"].endswith("Z")
    old = data.pick_commit(clct, revs[1]["revision"])
    new = data.pick_commit(clct, None)
    before = data.table(clct / "BE", old, None, None, offset=2, limit=2)
    after = data.table(clct / "BE", new, None, None, offset=2, limit=2)
    assert [row[1] for row in before["rows"]] == prices(50.0)["price"][2:4].tolist()
    assert [row[1] for row in after["rows"]] == [CORRECTED, CORRECTED]
    assert after["rows"][0][0] == "2024-03-01T02:00:00" and after["total"] == HOURS
    with pytest.raises(KeyError, match="not found"):
        data.pick_commit(clct, "0" * 11 + "-" + "0" * 40)


def test_plot_ranges_in_chart_units(web_repo: Repo) -> None:
    be = web_repo / "prices" / "BE"
    commit = data.pick_commit(be.collection)
    start = float((START - numpy.datetime64(0, "s")).astype(int)) + 3600 * 10
    body = data.plot(be, commit, str(start), str(start + 3600 * 4.5), width=800)
    assert body["time"] and body["columns"] == ["price", "volume"] and body["rows"] == 5
    assert body["x"] == [start + 3600 * h for h in range(5)]
    assert body["y"][0] == prices(50.0)["price"][10:15].tolist()
    iso = data.plot(be, commit, "2024-03-01T10:00", "2024-03-01T14:00", 800, ["price"])
    assert iso["x"] == body["x"] and iso["y"] == body["y"][:1]
    with pytest.raises(KeyError, match="plottable"):
        data.plot(be, commit, None, None, 800, ["timestamp"])
    with pytest.raises(ValueError, match="width"):
        data.plot(be, commit, None, None, 10**6)
    words = web_repo / "words" / "fr"
    with pytest.raises(ValueError, match="Cannot plot"):
        data.plot(words, data.pick_commit(words.collection), None, None, 800)


def test_plot_downsamples_and_keeps_the_spike(web_repo: Repo) -> None:
    wave = web_repo / "long" / "wave"
    body = data.plot(wave, data.pick_commit(wave.collection), None, None, width=500)
    assert body["rows"] == 100_000 and body["downsampled"]
    assert body["points"] == len(body["x"]) <= 4 * 500
    assert max(body["y"][0]) == 40.0 and SPIKE_AT in body["x"]
    zoom = data.plot(wave, data.pick_commit(wave.collection), "1000", "1099.5", width=500)
    assert zoom["x"] == list(range(1000, 1100)) and not zoom["downsampled"]


def test_json_cells() -> None:
    assert data.chart_numbers(numpy.array([1.5, numpy.nan])) == [1.5, None]
    stamps = numpy.array(["2024-01-01T00:00:01", "NaT"], dtype="M8[s]")
    assert data.chart_numbers(stamps) == [1704067201.0, None]
    assert data.cells(stamps) == ["2024-01-01T00:00:01", None]
    assert data.cells(numpy.array([True, False])) == [True, False]
    assert data.cells(numpy.array([{"a": 1}, "x"], dtype=object)) == ["{'a': 1}", "x"]


# --- HTTP routes ---------------------------------------------------------------------------


def call(
    url: str, data: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict, bytes]:
    """One request that follows no redirect: ``(status, headers, body)``."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers), exc.read()


def _lower(headers: object) -> dict:
    return {name.lower(): value for name, value in headers.items()}


def bearer(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def api(base: str, route: str, headers: dict | None = None, **params: object) -> dict:
    status, _, body = call(f"{base}/api/{route}?{urllib.parse.urlencode(params)}", None, headers)
    assert status == 200, body
    return json.loads(body)


def login(base: str, token: str, target: str = "") -> tuple[int, dict, bytes]:
    form = urllib.parse.urlencode({"token": token, "next": target}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return call(base + "/login", form, headers)


def test_routes_answer_json_with_the_bearer_token(server: str) -> None:
    assert api(server, "repos", bearer()) == {"repos": ["demo"]}
    found = api(server, "collections", bearer(), repo="demo")["collections"]
    assert [clct["label"] for clct in found] == ["long", "prices", "sensors", "words"]
    page = api(server, "series", bearer(), repo="demo", collection="sensors", q="9", limit=5)
    assert page["total"] == 57 and page["labels"][0] == "sensor-009"
    revs = api(server, "revisions", bearer(), repo="demo", collection="prices")["revisions"]
    old = {"rev": revs[-1]["revision"], "offset": 2, "limit": 1}
    rows = api(server, "rows", bearer(), repo="demo", collection="prices", series="BE", **old)
    assert rows["rows"] == [["2024-03-01T02:00:00", prices(50.0)["price"][2], 2]]
    plot = api(server, "plot", bearer(), repo="demo", collection="long", series="wave", width=300)
    assert plot["points"] <= 1200 and max(plot["y"][0]) == 40.0


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("collections?repo=nope", 404, "Repository 'nope' not found"),
        ("series?repo=demo&collection=nope", 404, "Collection 'nope' not found"),
        ("series?repo=demo", 400, 'Missing parameter "collection"'),
        ("series?repo=demo&collection=sensors&offset=x", 400, "must be an integer"),
        ("plot?repo=demo&collection=prices&series=BE&start=soon", 400, "soon"),
        ("plot?repo=demo&collection=prices&series=BE&start=nan", 400, "finite"),
        ("rows?repo=demo&collection=prices&series=BE&rev=zz", 404, "Revision 'zz' not found"),
        ("download?repo=demo&collection=prices&series=BE&format=xls", 400, "Unsupported"),
    ],
)
def test_route_errors(server: str, query: str, status: int, message: str) -> None:
    code, headers, body = call(f"{server}/api/{query}", None, bearer())
    assert code == status
    assert message in json.loads(body)["error"]
    assert headers["cache-control"] == "no-store"


def test_downloads_of_the_visible_range(server: str) -> None:
    query = "repo=demo&collection=prices&series=BE&start=2024-03-01T02:00&stop=2024-03-01T03:00"
    status, headers, body = call(f"{server}/api/download?{query}&format=csv", None, bearer())
    assert status == 200 and headers["content-disposition"].endswith("BE.csv")
    assert body.decode().splitlines() == [
        "timestamp,price,volume",
        "2024-03-01T02:00:00,999.0,0",
        "2024-03-01T03:00:00,999.0,0",
    ]
    pq = pytest.importorskip("pyarrow.parquet")
    status, headers, body = call(f"{server}/api/download?{query}&format=parquet", None, bearer())
    assert status == 200 and headers["content-type"] == "application/vnd.apache.parquet"
    assert pq.read_table(io.BytesIO(body)).column("price").to_pylist() == [CORRECTED] * 2


def test_without_login_pages_go_to_the_form_and_json_is_refused(server: str) -> None:
    status, headers, _ = call(f"{server}/repo?repo=demo")
    assert status == 303
    target = urllib.parse.quote("/base/ui/repo?repo=demo", safe="")
    assert headers["location"] == f"/base/ui/login?next={target}"
    status, _, body = call(f"{server}/api/repos")
    assert status == 401 and b"log in" in body
    assert call(f"{server}/api/repos", None, bearer("wrong"))[0] == 401
    status, _, page = call(f"{server}/login")
    assert status == 200 and b'name="token"' in page and TOKEN.encode() not in page
    assert call(f"{server}/static/app.js")[0] == 200  # assets need no session


def test_login_gives_a_strict_http_only_cookie(server: str) -> None:
    status, _, body = login(server, "wrong")
    assert status == 401 and b"Wrong token" in body
    status, headers, _ = login(server, TOKEN, "/base/ui/collection?repo=demo&collection=long")
    assert status == 303 and headers["location"] == "/base/ui/collection?repo=demo&collection=long"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/base/ui/" in cookie
    assert TOKEN not in cookie
    session = {"Cookie": cookie.split(";")[0]}
    status, _, page = call(f"{server}/collection?repo=demo&collection=sensors", None, session)
    assert status == 200 and b"sensor-049" in page and b"sensor-050" not in page
    assert TOKEN.encode() not in page
    assert api(server, "repos", session) == {"repos": ["demo"]}
    host = server.rsplit("/base/ui", 1)[0]
    assert call(f"{host}/base/demo/ls", None, session)[0] == 401  # storage wants the token
    call(f"{server}/logout", b"", session)
    assert call(f"{server}/api/repos", None, session)[0] == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/elsewhere"])
def test_login_never_redirects_elsewhere(server: str, target: str) -> None:
    status, headers, _ = login(server, TOKEN, target)
    assert status == 303 and headers["location"] == "/base/ui/"


def test_pages_have_a_strict_content_security_policy(open_server: str) -> None:
    for page in ("/ui/", "/ui/repo?repo=/", "/ui/series?repo=/&collection=prices&series=BE"):
        status, headers, body = call(open_server + page)
        assert status == 200
        assert "script-src 'self';" in headers["content-security-policy"]
        assert "default-src 'none'" in headers["content-security-policy"]
        assert b"<script>" not in body and b" style=" not in body
    status, headers, _ = call(open_server + "/ui")
    assert status == 307 and headers["location"] == "/ui/"
    assert b"/ui/" in call(open_server + "/")[2]  # the index links to the interface


INTERFACE_ROUTES = ("api/collections?repo=/", "api/plot?repo=/&collection=prices&series=BE", "")


def test_interface_routes_only_read(open_server: str, server: str) -> None:
    for route in INTERFACE_ROUTES:  # the server's Guard refuses a change first
        status, _, body = call(f"{open_server}/ui/{route}", b"x=1")
        assert status == 403 and b"read-only" in body
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for route in INTERFACE_ROUTES:  # with write access, the routes still only read
        status, headers, _ = call(f"{server}/{route.replace('=/', '=demo')}", b"x=1", bearer)
        assert status == 405 and set(headers["allow"].split(", ")) == {"GET", "HEAD"}
    status, _, body = call(f"{open_server}/write?path=x", b"data")
    assert status == 403 and b"read-only" in body


def test_interface_pages_send_a_browser_to_the_login_form(server: str) -> None:
    status, headers, _ = call(f"{server}/repo?repo=demo")
    assert status == 303 and headers["location"].startswith("/base/ui/login?next=")
    status, _, _ = call(f"{server}/api/collections?repo=demo")
    assert status == 401
    status, _, body = call(f"{server}/login")
    assert status == 200 and b'name="token"' in body


def test_a_repository_may_not_hide_the_interface() -> None:
    from lakota.pod import MemPOD
    from lakota.server import build_app

    with pytest.raises(ValueError, match="hide the web interface"):
        build_app({"ui": MemPOD()})
    with pytest.raises(ValueError, match="hide the web interface"):
        build_app({"ui/inner": MemPOD()}, base="/")


def test_lakota_ui_opens_a_read_only_view_in_the_browser(web_repo: Repo, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    from s3server import stop

    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"  # stands for the default browser: records the URL
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": str(browser)}
    command = [sys.executable, "-m", "lakota", "-r", str(web_repo.pod.path), "ui"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not opened.exists() or not opened.read_text().strip():
            assert proc.poll() is None and time.monotonic() < deadline, "no browser opened"
            time.sleep(0.05)
        url = opened.read_text().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/ui/repo?repo=%2F")
        status, _, page = call(url)
        assert status == 200 and b"sensors" in page and b"prices" in page
        host = url.split("/ui/", 1)[0]
        status, _, body = call(f"{host}/write?path=x", b"data")
        assert status == 403 and b"read-only" in body
        port = host.rsplit(":", 1)[1]
        rebound = {"Host": f"attacker.example:{port}"}  # DNS rebinding
        assert call(f"{host}/ui/api/repos", None, rebound)[0] == 421
        assert call(f"{host}/ui/api/repos", None, {"Host": f"localhost:{port}"})[0] == 200
    finally:
        stop(proc)
