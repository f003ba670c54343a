// The series page of lakota's web interface: chart, range, revision and table.
// It reads its settings from the data-* attributes of #view (no inline script, so the
// page works under a strict Content-Security-Policy) and keeps its state in the URL.
(function () {
  "use strict";
  const view = document.getElementById("view");
  if (!view) return;
  const cfg = view.dataset;
  const columns = JSON.parse(cfg.columns);
  const isTime = cfg.time === "true";
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"];
  const PAGE = 50;
  const params = new URLSearchParams(location.search);
  const state = {
    rev: params.get("rev") || "",
    start: params.get("start") || "",
    stop: params.get("stop") || "",
    offset: 0,
  };
  const done = { plot: 0, rows: 0 };
  const asked = { plot: 0, rows: 0 }; // only the answer to the latest request is drawn
  let chart = null;
  let wheelTimer = null;
  window.lakotaView = { state: state, done: done, chart: null, plot: null };

  const $ = (id) => document.getElementById(id);

  function query(extra) {
    const q = new URLSearchParams({ repo: cfg.repo, collection: cfg.collection, series: cfg.series });
    for (const key of ["rev", "start", "stop"]) {
      if (state[key]) q.set(key, state[key]);
    }
    for (const [key, value] of Object.entries(extra || {})) q.set(key, value);
    return q;
  }

  async function getJSON(route, extra) {
    const response = await fetch(cfg.api + "/" + route + "?" + query(extra), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  function showError(error) {
    $("error").hidden = !error;
    $("error").textContent = error ? String(error.message || error) : "";
  }

  function saveState() {
    history.replaceState(null, "", location.pathname + "?" + query());
    $("csv").href = cfg.api + "/download?" + query({ format: "csv" });
    $("parquet").href = cfg.api + "/download?" + query({ format: "parquet" });
  }

  // --- chart ---------------------------------------------------------------------------

  function chartWidth() {
    return Math.max(320, $("chart").clientWidth - 2);
  }

  function makeChart(body) {
    const options = {
      width: chartWidth(),
      height: 400,
      scales: { x: { time: isTime } },
      series: [{ label: body.index }].concat(
        body.columns.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 2 }))
      ),
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: { setSelect: [onSelect] },
    };
    if (isTime) options.tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
    chart = new uPlot(options, [body.x].concat(body.y), $("chart"));
    chart.over.addEventListener("wheel", onWheel, { passive: false });
    window.lakotaView.chart = chart;
  }

  async function drawChart() {
    if (!columns.length) {
      $("chart").hidden = true;
      $("chart-status").textContent = "No numeric column to plot: see the rows below.";
      return;
    }
    const ticket = ++asked.plot;
    const body = await getJSON("plot", { width: chartWidth() });
    if (ticket !== asked.plot) return;
    window.lakotaView.plot = body;
    if (chart === null) makeChart(body);
    else chart.setData([body.x].concat(body.y));
    const low = Number(state.start);
    const high = Number(state.stop);
    if (state.start && state.stop && low < high) {
      chart.setScale("x", { min: low, max: high });
      showRange(low, high);
    } else if (body.x.length) {
      showRange(body.x[0], body.x[body.x.length - 1]);
    }
    const how = body.downsampled ? " (downsampled with M4)" : "";
    $("chart-status").textContent =
      body.rows + " rows in range, " + body.points + " points drawn" + how;
    done.plot += 1;
  }

  function onSelect(u) {
    if (u.select.width < 3) return;
    const low = u.posToVal(u.select.left, "x");
    const high = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    zoomTo(low, high);
  }

  function onWheel(event) {
    event.preventDefault();
    const { min, max } = chart.scales.x;
    const at = chart.posToVal(event.offsetX, "x");
    const factor = event.deltaY < 0 ? 0.75 : 1 / 0.75;
    const low = at - (at - min) * factor;
    const high = at + (max - at) * factor;
    chart.setScale("x", { min: low, max: high });
    clearTimeout(wheelTimer);
    wheelTimer = setTimeout(() => zoomTo(low, high), 200);
  }

  function currentRange() {
    if (chart !== null) return [chart.scales.x.min, chart.scales.x.max];
    return [Number(state.start), Number(state.stop)];
  }

  function zoomTo(low, high) {
    if (!(high > low)) return;
    state.start = String(low);
    state.stop = String(high);
    refresh();
  }

  function pan(fraction) {
    const [low, high] = currentRange();
    const shift = (high - low) * fraction;
    zoomTo(low + shift, high + shift);
  }

  function zoomOut() {
    const [low, high] = currentRange();
    const half = high - low;
    zoomTo(low - half / 2, high + half / 2);
  }

  // --- range inputs (UTC for times) ----------------------------------------------------

  function toInput(value) {
    if (!Number.isFinite(value)) return "";
    if (!isTime) return String(value);
    return new Date(value * 1000).toISOString().slice(0, 19);
  }

  function fromInput(text) {
    if (!text) return "";
    if (!isTime) return text;
    return String(Date.parse(text + "Z") / 1000);
  }

  function showRange(low, high) {
    $("from").value = toInput(low);
    $("to").value = toInput(high);
  }

  // --- rows ----------------------------------------------------------------------------

  async function drawRows() {
    const ticket = ++asked.rows;
    const body = await getJSON("rows", { offset: state.offset, limit: PAGE });
    if (ticket !== asked.rows) return;
    const head = document.createElement("tr");
    for (const name of body.columns) {
      const cell = document.createElement("th");
      cell.textContent = name;
      head.appendChild(cell);
    }
    $("rows").tHead.replaceChildren(head);
    const lines = body.rows.map((row) => {
      const line = document.createElement("tr");
      for (const value of row) {
        const cell = document.createElement("td");
        cell.textContent = value === null ? "" : String(value);
        line.appendChild(cell);
      }
      return line;
    });
    $("rows").tBodies[0].replaceChildren(...lines);
    const first = body.rows.length ? body.offset + 1 : 0;
    $("row-status").textContent =
      "rows " + first + "–" + (body.offset + body.rows.length) + " of " + body.total;
    $("prev").disabled = body.offset === 0;
    $("next").disabled = body.offset + body.rows.length >= body.total;
    done.rows += 1;
  }

  // --- revisions -----------------------------------------------------------------------

  async function loadRevisions() {
    const body = await getJSON("revisions", {});
    const select = $("rev");
    for (const rev of body.revisions) {
      const option = document.createElement("option");
      option.value = rev.revision;
      option.textContent = rev.date + (rev.leaf ? " (leaf)" : "");
      select.appendChild(option);
    }
    select.value = state.rev;
  }

  // --- wiring --------------------------------------------------------------------------

  async function refresh(keepOffset) {
    if (!keepOffset) state.offset = 0;
    saveState();
    try {
      showError(null);
      await Promise.all([drawChart(), drawRows()]);
    } catch (error) {
      showError(error);
    }
  }

  $("rev").addEventListener("change", () => {
    state.rev = $("rev").value;
    refresh();
  });
  $("apply").addEventListener("click", () => {
    state.start = fromInput($("from").value);
    state.stop = fromInput($("to").value);
    refresh();
  });
  $("pan-left").addEventListener("click", () => pan(-0.5));
  $("pan-right").addEventListener("click", () => pan(0.5));
  $("zoom-out").addEventListener("click", zoomOut);
  $("reset").addEventListener("click", () => {
    state.start = "";
    state.stop = "";
    refresh();
  });
  $("prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    drawRows().catch(showError);
  });
  $("next").addEventListener("click", () => {
    state.offset += PAGE;
    drawRows().catch(showError);
  });
  window.addEventListener("resize", () => {
    if (chart !== null) chart.setSize({ width: chartWidth(), height: 400 });
  });

  loadRevisions().catch(showError);
  refresh(true);
})();
