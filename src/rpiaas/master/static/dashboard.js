// The cluster overview: a summary, the live runs, and the nodes by cluster with what they run now,
// refreshed every poll interval.
"use strict";

(function () {
  const r = window.rpiaas;
  const runs = window.rpiaasRuns;
  const COLUMNS = 12;
  const PAGE_SIZE = 100;  // nodes per page: a thousand rows each refresh would stall the page
  let pollIntervalS = null;
  let offset = 0;
  let refreshes = 0;

  function cell(row, className, text) {
    const td = document.createElement("td");
    td.className = className;
    if (text !== undefined) td.textContent = text;
    row.appendChild(td);
    return td;
  }

  // off / booting / on: as a live run switched it, else as the poller sees it
  function powerName(node) {
    if (node.power_state) return node.power_state;
    if (r.isNumber(node.booting_since_s)) return "booting";
    return node.online === true ? "on" : "unknown";
  }

  function nodeRow(node) {
    const sample = node.sample;
    const state = r.stateName(node.online, node);
    const power = powerName(node);
    const row = document.createElement("tr");
    row.className = "node " + state;
    row.dataset.name = node.name;
    row.dataset.online = state === "unknown" ? "unknown" : String(node.online);
    row.dataset.cpu = sample && r.isNumber(sample.cpu_util) ? (100 * sample.cpu_util).toFixed(1) : "";
    row.dataset.memUsedMb = sample && r.isNumber(sample.mem_used_mb) ? Math.round(sample.mem_used_mb) : "";
    row.dataset.memTotalMb = sample && r.isNumber(sample.mem_total_mb) ? Math.round(sample.mem_total_mb) : "";
    row.dataset.temperatureC = sample && r.isNumber(sample.temperature_c) ? sample.temperature_c.toFixed(1) : "";
    row.dataset.emulated = String(node.emulated === true);
    row.dataset.tasks = node.tasks.map((t) => t.run + "/" + t.task).join(" ");
    row.dataset.power = power;
    const metered = node.power ? node.power.power_w : null;  // a meter's newest reading
    row.dataset.powerW = r.isNumber(metered) ? metered.toFixed(2) : "";
    row.dataset.allocCores = node.allocated ? String(node.allocated.cores) : "";
    row.dataset.allocMemMb = node.allocated ? String(node.allocated.mem_mb) : "";

    const link = document.createElement("a");
    link.href = "/nodes/" + encodeURIComponent(node.name);
    link.textContent = node.name;
    cell(row, "name").appendChild(link);
    const type = cell(row, "type", node.type);
    if (node.emulated === true) type.append(" ", emulatedBadge());

    const badge = document.createElement("span");
    badge.className = "badge " + state;
    badge.textContent = state === "unknown" ? "unknown" : state;
    const since = document.createElement("span");
    since.className = "since";
    since.textContent = r.stateText(node).replace(/^(online|offline|booting) ?/, "");
    const stateCell = cell(row, "state");
    stateCell.append(badge, " ", since);
    if (node.online === false && node.reason) stateCell.title = node.reason;
    else if (r.isNumber(node.changed_s)) stateCell.title = "since " + r.clock(node.changed_s);

    const powerBadge = document.createElement("span");
    powerBadge.className = "badge power-" + power;
    powerBadge.textContent = power;
    cell(row, "power").appendChild(powerBadge);

    // Figures of an offline node are its last sample: shown, but greyed by the row's class.
    const cpu = cell(row, "cpu num");
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = sample && r.isNumber(sample.cpu_util)
      ? Math.min(100, Math.max(0, 100 * sample.cpu_util)).toFixed(1) + "%" : "0";
    bar.appendChild(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = sample ? r.percent(sample.cpu_util) : r.DASH;
    cpu.append(bar, value);

    const cap = node.capacity;
    cell(row, "alloc-cores num", node.allocated && cap ? node.allocated.cores + " / " + cap.cores : r.DASH);
    cell(row, "mem num", sample ? r.mb(sample.mem_used_mb) + " / " + r.mb(sample.mem_total_mb) + " MB" : r.DASH);
    cell(row, "alloc-mem num", node.allocated && cap
      ? r.mb(node.allocated.mem_mb) + " / " + r.mb(cap.mem_mb) + " MB" : r.DASH);
    // metered power only: a node without a meter shows none (its power is modelled in a run)
    const watts = cell(row, "watts num", r.isNumber(metered) ? metered.toFixed(2) + " W" : r.DASH);
    watts.title = r.isNumber(metered) ? "metered (" + node.power.source + ")" : "no meter: a run models this node's power";
    cell(row, "temp num", sample ? r.celsius(sample.temperature_c) : r.DASH);
    const seen = cell(row, "seen", r.ago(node.last_ok_s));
    if (r.isNumber(node.last_ok_s)) seen.title = r.clock(node.last_ok_s);
    cell(row, "tasks", node.tasks.length ? runs.placementText(node.tasks) : r.DASH);
    return row;
  }

  function emulatedBadge() {
    const badge = document.createElement("span");
    badge.className = "badge emulated";
    badge.textContent = "emulated";
    badge.title = "An emulated node on a shared machine: CPU and memory are its own tasks', "
                  + "against its node type's cores and memory.";
    return badge;
  }

  // One body per cluster of the config (domain and address prefix), as the original cluster view.
  function clusterBodies(clusters, nodes) {
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const groups = clusters.map((c) => ({domain: c.domain, prefix: c.prefix,
                                         nodes: c.nodes.filter((n) => byName.has(n))}));
    const placed = new Set(groups.flatMap((g) => g.nodes));
    const rest = nodes.map((n) => n.name).filter((n) => !placed.has(n));
    if (rest.length) groups.push({domain: "", prefix: "", nodes: rest});
    return groups.map((g) => {
      const body = document.createElement("tbody");
      body.className = "cluster";
      body.dataset.domain = g.domain;
      const head = document.createElement("tr");
      head.className = "cluster-head";
      const th = document.createElement("th");
      th.colSpan = COLUMNS;
      th.scope = "rowgroup";
      const name = document.createElement("span");
      name.className = "domain";
      name.textContent = g.domain || "other nodes";
      const about = document.createElement("span");
      about.className = "since";
      const online = g.nodes.filter((n) => byName.get(n).online === true).length;
      about.textContent = (g.prefix ? g.prefix + ".x · " : "") + g.nodes.length + " nodes, "
                          + online + " online";
      th.append(name, " ", about);
      head.appendChild(th);
      body.append(head, ...g.nodes.map((n) => nodeRow(byName.get(n))));
      return body;
    });
  }

  function showSummary(summary) {
    r.setText("summary-nodes", String(summary.nodes));
    r.setText("summary-online", String(summary.online));
    r.setText("summary-offline", String(summary.offline));
    r.setText("summary-unknown", String(summary.unknown));
    r.setText("summary-cpu", r.percent(summary.cpu_util_mean));
    r.setText("summary-interval", summary.poll_interval_s + " s");
    // the nodes above come from the master's memory: a failing store loses no reading shown here
    r.setText("summary-store", summary.store);
    document.getElementById("summary-store-item").className =
      summary.store === "ok" ? "" : "store-failing";
  }

  // "nodes 101–200 of 1000" and the buttons to the pages before and after
  function showPages(total) {
    if (offset >= total && total > 0) offset = Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE;
    const pages = document.getElementById("nodes-pages");
    pages.hidden = total <= PAGE_SIZE;
    r.setText("nodes-page", "nodes " + (total ? offset + 1 : 0) + "–" + Math.min(total, offset + PAGE_SIZE)
              + " of " + total);
    document.getElementById("nodes-prev").disabled = offset === 0;
    document.getElementById("nodes-next").disabled = offset + PAGE_SIZE >= total;
  }

  function turn(step) {
    offset = Math.max(0, offset + step * PAGE_SIZE);
    refresh();
  }

  async function refresh() {
    let summary, nodes, runList, clusters;
    try {
      [summary, nodes, runList, clusters] = await Promise.all([
        r.getJSON("/api/v1/summary"),
        r.getJSON("/api/v1/nodes?offset=" + offset + "&limit=" + PAGE_SIZE), r.getJSON("/api/v1/runs"),
        r.getJSON("/api/v1/clusters")]);
    } catch (e) {
      r.showError("The master is not answering (" + e.message + "); retrying every "
                  + r.refreshSeconds(pollIntervalS) + " s. Figures below are from "
                  + (refreshes ? "the last good refresh." : "nowhere yet."));
      return;
    }
    pollIntervalS = summary.poll_interval_s;
    showSummary(summary);
    runs.render(runList.runs);
    const table = document.getElementById("nodes");
    for (const body of Array.from(table.tBodies)) body.remove();
    table.append(...clusterBodies(clusters.clusters, nodes.nodes));
    showPages(nodes.total);
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    r.clearError();
    r.setText("updated", "Updated " + new Date().toLocaleTimeString() + "; refreshes every "
              + r.refreshSeconds(pollIntervalS) + " s.");
  }

  document.getElementById("nodes-prev").addEventListener("click", () => turn(-1));
  document.getElementById("nodes-next").addEventListener("click", () => turn(1));
  r.every(() => r.refreshSeconds(pollIntervalS), refresh);
})();
