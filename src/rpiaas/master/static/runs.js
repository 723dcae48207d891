// The runs panel of the overview: each live run's policy, task kind and timescale, its state,
// progress, task counts and files.
"use strict";

window.rpiaasRuns = (function () {
  const r = window.rpiaas;

  function cell(row, className, text) {
    const td = document.createElement("td");
    td.className = className;
    if (text !== undefined) td.textContent = text;
    row.appendChild(td);
    return td;
  }

  // "100× faster", "real time", "2× slower": a timescale in words
  function pace(timescale) {
    if (!r.isNumber(timescale)) return "";
    if (timescale === 1) return "real time";
    const factor = timescale < 1 ? 1 / timescale : timescale;
    return Number(factor.toPrecision(3)) + "× " + (timescale < 1 ? "faster" : "slower")
           + " than the scenario";
  }

  function runRow(run) {
    const row = document.createElement("tr");
    row.className = "run " + run.state;
    row.dataset.id = run.id;
    row.dataset.state = run.state;
    row.dataset.progress = r.isNumber(run.progress) ? run.progress.toFixed(3) : "";
    row.dataset.queued = String(run.queued);
    row.dataset.running = String(run.running);
    row.dataset.ended = String(run.ended);
    row.dataset.policy = run.policy;
    row.dataset.taskKind = run.task_kind;
    row.dataset.timescale = String(run.timescale);
    cell(row, "id", run.id);
    cell(row, "policy", run.policy + (run.queue ? " · queue " + run.queue : ""));
    cell(row, "kind", run.task_kind);
    const scale = cell(row, "timescale num", r.isNumber(run.timescale) ? String(run.timescale) : r.DASH);
    scale.title = pace(run.timescale);

    const badge = document.createElement("span");
    badge.className = "badge " + run.state;
    badge.textContent = run.state;
    const stateCell = cell(row, "state");
    stateCell.appendChild(badge);
    if (run.error) stateCell.title = run.error;
    if (run.held) {  // no new starts until the master's disk has room again
      const held = document.createElement("span");
      held.className = "badge held";
      held.textContent = "held " + Math.round(run.held_s) + " s";
      held.title = run.held;
      stateCell.appendChild(held);
      row.dataset.held = run.held;
    }

    const progress = cell(row, "progress");
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = r.isNumber(run.progress) ? (100 * run.progress).toFixed(1) + "%" : "0";
    bar.appendChild(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = r.isNumber(run.progress) ? r.percent(run.progress, 0) : r.DASH;
    progress.append(bar, value);

    cell(row, "queued num", String(run.queued));
    cell(row, "running num", String(run.running));
    // done of all, where the workload's size is known
    cell(row, "ended num", r.isNumber(run.tasks_total) ? run.ended + " / " + run.tasks_total
                                                        : String(run.ended));
    cell(row, "now num", run.now_s.toFixed(1) + " s"
                         + (r.isNumber(run.horizon_s) ? " / " + run.horizon_s + " s" : ""));
    const files = cell(row, "files");
    if (!run.files.length) files.textContent = run.state === "running" ? "when done" : r.DASH;
    run.files.forEach((name, i) => {
      const link = document.createElement("a");
      link.href = "/api/v1/runs/" + encodeURIComponent(run.id) + "/files/" + encodeURIComponent(name);
      link.textContent = name;
      if (i) files.append(" ");
      files.appendChild(link);
    });
    return row;
  }

  // The newest run first: the one running now is the one looked for.
  function render(runs) {
    const table = document.getElementById("runs-table");
    const ordered = runs.slice().reverse();
    table.tBodies[0].replaceChildren(...ordered.map(runRow));
    table.hidden = !runs.length;
    document.getElementById("runs-none").hidden = Boolean(runs.length);
  }

  // "run-id: 3, 7" per run, for a node's tasks cell
  function placementText(tasks) {
    const byRun = new Map();
    for (const t of tasks) {
      if (!byRun.has(t.run)) byRun.set(t.run, []);
      byRun.get(t.run).push(t.task);
    }
    return Array.from(byRun, ([run, ids]) => run + ": " + ids.join(", ")).join("; ");
  }

  return {render, placementText};
})();
