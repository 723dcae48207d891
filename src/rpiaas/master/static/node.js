// A node's page: its current state and plots of its history, refreshed every poll interval.
"use strict";

(function () {
  const r = window.rpiaas;
  const plot = window.rpiaasPlot;
  const MAX_POINTS = 400;
  const WINDOWS_S = [900, 3600, 21600, 86400, 604800];
  const DEFAULT_WINDOW_S = 3600;
  // A sample further than this many poll intervals (or buckets) from the last is a gap: the node was down.
  const GAP_STEPS = 2.5;

  const name = decodeURIComponent(location.pathname.replace(/^\/nodes\//, ""));
  const base = "/api/v1/nodes/" + encodeURIComponent(name);
  let pollIntervalS = null;
  let refreshes = 0;
  let fittedWindowS = null;  // the window that fits the node's data, when the URL names none

  function windowS() {
    const match = /(?:^#|&)window=(\d+)/.exec(location.hash);
    if (match && WINDOWS_S.includes(Number(match[1]))) return Number(match[1]);
    return fittedWindowS || DEFAULT_WINDOW_S;
  }

  // The smallest window that holds all of the node's samples (of the last 7 days): a node seen
  // for two minutes opens on 15 min, not on a 7-day plot with its data in one corner. Each
  // question is one bucket: are there samples older than the window?
  async function fitWindow() {
    const endS = r.nowS(), oldest = WINDOWS_S[WINDOWS_S.length - 1];
    for (const span of WINDOWS_S.slice(0, -1)) {
      const query = new URLSearchParams({start: (endS - oldest).toFixed(3),
                                         end: (endS - span).toFixed(3),
                                         resolution: String(oldest - span)});
      const older = await r.getJSON(base + "/history?" + query);
      if (!older.samples.length) return span;
    }
    return oldest;
  }

  function showWindowButtons() {
    for (const button of document.querySelectorAll("#windows button")) {
      const active = Number(button.dataset.windowS) === windowS();
      button.classList.toggle("active", active);
      button.setAttribute("aria-pressed", String(active));
    }
  }

  function showNode(node) {
    const sample = node.sample;
    const state = r.stateName(node.online, node);
    document.title = node.name + " — rpiaas";
    r.setText("node-name", node.name);
    const badge = r.setText("node-state", state);
    badge.className = "badge " + state;
    badge.dataset.online = state === "unknown" ? "unknown" : String(node.online);
    r.setText("cur-type", node.type);
    r.setText("cur-address", node.address || r.DASH);
    r.setText("cur-agent", node.agent);
    r.setText("cur-since", r.stateText(node)).title = r.clock(node.changed_s);
    r.setText("cur-seen", r.ago(node.last_ok_s)).title = r.clock(node.last_ok_s);
    r.setText("cur-cpu", sample ? r.percent(sample.cpu_util) : r.DASH);
    r.setText("cur-mem", sample ? r.mb(sample.mem_used_mb) + " / " + r.mb(sample.mem_total_mb) + " MB" : r.DASH);
    r.setText("cur-temp", sample ? r.celsius(sample.temperature_c) : r.DASH);
    r.setText("cur-load", sample && r.isNumber(sample.load1) ? sample.load1.toFixed(2) : r.DASH);
    r.setText("cur-disk", sample ? r.percent(sample.disk_used_ratio) : r.DASH);
    r.setText("cur-tasks", node.tasks.length ? window.rpiaasRuns.placementText(node.tasks) : r.DASH);
    document.getElementById("node-emulated").hidden = node.emulated !== true;
    showLastBoot(node.last_boot);
    const reason = document.getElementById("reason");
    reason.hidden = !(node.online === false && node.reason);
    reason.textContent = node.online === false ? "Offline because: " + node.reason : "";
  }

  // The last boot report: its boot time (kernel start to report) and when it came.
  function showLastBoot(boot) {
    let dd = document.getElementById("cur-boot");
    if (!dd) {
      const row = document.createElement("div");
      row.innerHTML = '<dt>last boot</dt><dd id="cur-boot"></dd>';
      document.getElementById("cur-since").closest("dl").appendChild(row);
      dd = document.getElementById("cur-boot");
    }
    dd.textContent = boot ? (r.isNumber(boot.boot_s) ? boot.boot_s.toFixed(1) + " s, " : "") +
        r.ago(boot.time_s) : r.DASH;
    dd.title = boot ? r.clock(boot.time_s) : "";
  }

  function showHistory(history, startS, endS) {
    const resolution = history.resolution || 0;
    const gapS = GAP_STEPS * Math.max(resolution, r.isNumber(pollIntervalS) ? pollIntervalS : 0);
    // A bucket's time is where it starts: plot it in its middle.
    const samples = history.samples.map((s) => Object.assign({t: s.time_s + (s.resolution_s || 0) / 2}, s));
    const points = (value) => samples.map((s) => [s.t, s.online === false ? null : value(s)]);
    const common = {startS, endS, gapS, emptyText: "no samples in this window"};
    plot.draw(document.querySelector('svg.plot[data-metric="cpu"]'), Object.assign({}, common, {
      unit: "%", range: {min: 0, max: 100},
      series: [{name: "cpu", className: "line", points: points((s) => 100 * s.cpu_util)}],
    }));
    plot.draw(document.querySelector('svg.plot[data-metric="mem"]'), Object.assign({}, common, {
      unit: "MB", range: {min: 0},
      series: [{name: "used", className: "line", points: points((s) => s.mem_used_mb)},
               {name: "total", className: "total", points: points((s) => s.mem_total_mb)}],
    }));
    const hasTemperature = samples.some((s) => r.isNumber(s.temperature_c));
    plot.draw(document.querySelector('svg.plot[data-metric="temp"]'), Object.assign({}, common, {
      unit: "°C", range: {minSpan: 10},
      emptyText: samples.length && !hasTemperature ? "no temperature sensor" : common.emptyText,
      series: [{name: "temperature", className: "line",
                points: points((s) => r.isNumber(s.temperature_c) ? s.temperature_c : null)}],
    }));
  }

  async function refresh() {
    const span = windowS();
    const endS = r.nowS(), startS = endS - span;
    const query = new URLSearchParams({start: startS.toFixed(3), resolution: String(span / MAX_POINTS)});
    let summary, nodes, history;
    try {
      [summary, nodes, history] = await Promise.all([
        r.getJSON("/api/v1/summary"), r.getJSON("/api/v1/nodes"), r.getJSON(base + "/history?" + query)]);
    } catch (e) {
      r.showError("The master is not answering (" + e.message + "); retrying every "
                  + r.refreshSeconds(pollIntervalS) + " s.");
      return;
    }
    pollIntervalS = summary.poll_interval_s;
    const node = nodes.nodes.find((n) => n.name === name);
    if (!node) {
      r.showError("The master no longer knows a node " + name + ".");
      return;
    }
    showNode(node);
    showHistory(history, startS, endS);
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    document.body.dataset.windowS = String(span);
    r.clearError();
    r.setText("updated", "Updated " + new Date().toLocaleTimeString() + "; refreshes every "
              + r.refreshSeconds(pollIntervalS) + " s; "
              + history.samples.length + " points, buckets of " + span / MAX_POINTS + " s.");
  }

  for (const button of document.querySelectorAll("#windows button")) {
    button.addEventListener("click", () => {
      location.hash = "window=" + button.dataset.windowS;
    });
  }
  window.addEventListener("hashchange", () => {
    showWindowButtons();
    refresh();
  });
  async function start() {
    if (!/(?:^#|&)window=\d+/.test(location.hash)) {
      try {
        fittedWindowS = await fitWindow();
      } catch (e) { /* the first refresh shows the error; the default window meanwhile */ }
    }
    document.body.dataset.fittedWindowS = String(fittedWindowS || "");
    showWindowButtons();
    r.every(() => r.refreshSeconds(pollIntervalS), refresh);
  }

  start();
})();
