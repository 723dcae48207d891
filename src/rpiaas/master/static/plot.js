// Small SVG line plots over time: axes with time and value ticks, gaps drawn as breaks.
"use strict";

window.rpiaasPlot = (function () {
  const WIDTH = 800, HEIGHT = 220;
  const LEFT = 56, RIGHT = 12, TOP = 22, BOTTOM = 28;
  const TIME_STEPS_S = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
                        86400, 172800];
  const MAX_TIME_TICKS = 8, MAX_VALUE_TICKS = 5;
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

  // New elements take the namespace of the page's <svg>, which the HTML parser gave it.
  function el(svg, name, attrs, text) {
    const e = document.createElementNS(svg.namespaceURI, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // 1, 2 or 5 times a power of ten, so that `span` needs at most `maxTicks` of them.
  function niceStep(span, maxTicks) {
    const raw = span / maxTicks;
    const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) {
      if (m * magnitude >= raw) return m * magnitude;
    }
    return 10 * magnitude;
  }

  // The value range to show: [min, max] of the data widened to whole ticks.
  function valueRange(values, fixed) {
    let lo = fixed.min !== undefined ? fixed.min : Math.min(...values);
    let hi = fixed.max !== undefined ? fixed.max : Math.max(...values);
    if (fixed.min === undefined || fixed.max === undefined) {
      if (hi - lo < (fixed.minSpan || 1)) {
        const mid = (hi + lo) / 2, half = (fixed.minSpan || 1) / 2;
        lo = fixed.min !== undefined ? lo : mid - half;
        hi = fixed.max !== undefined ? hi : Math.max(mid + half, lo + 2 * half);
      }
      const step = niceStep(hi - lo, MAX_VALUE_TICKS);
      if (fixed.min === undefined) lo = Math.floor(lo / step) * step;
      if (fixed.max === undefined) hi = Math.ceil(hi / step) * step;
    }
    return [lo, hi];
  }

  function pad2(n) {
    return String(n).padStart(2, "0");
  }

  function timeLabel(timeS, stepS) {
    const d = new Date(timeS * 1000);
    if (stepS >= 86400) return DAYS[d.getDay()] + " " + d.getDate();
    const hm = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
    return stepS < 60 ? hm + ":" + pad2(d.getSeconds()) : hm;
  }

  // Tick times on whole local minutes, hours or days.
  function timeTicks(startS, endS) {
    const span = endS - startS;
    const step = TIME_STEPS_S.find((s) => span / s <= MAX_TIME_TICKS) || TIME_STEPS_S[TIME_STEPS_S.length - 1];
    const offset = -new Date(startS * 1000).getTimezoneOffset() * 60;
    const ticks = [];
    for (let t = Math.ceil((startS + offset) / step) * step - offset; t <= endS; t += step) ticks.push(t);
    return {step, ticks};
  }

  // Points [[t, v], ...] in time order -> runs with no gap longer than `gapS` and no missing value.
  function segments(points, gapS) {
    const out = [];
    let run = [], last = null;
    for (const [t, v] of points) {
      if (v === null || !Number.isFinite(v)) {
        if (run.length) out.push(run);
        run = [];
        last = null;
        continue;
      }
      if (last !== null && t - last > gapS && run.length) {
        out.push(run);
        run = [];
      }
      run.push([t, v]);
      last = t;
    }
    if (run.length) out.push(run);
    return out;
  }

  // opts: {startS, endS, gapS, unit, range: {min, max, minSpan}, emptyText,
  //        series: [{name, className, points: [[t, v], ...]}]} (the first series sets "empty")
  function draw(svg, opts) {
    svg.replaceChildren();
    svg.setAttribute("viewBox", "0 0 " + WIDTH + " " + HEIGHT);
    const x0 = LEFT, x1 = WIDTH - RIGHT, y0 = HEIGHT - BOTTOM, y1 = TOP;
    const values = opts.series.flatMap((s) => s.points.map((p) => p[1]))
      .filter((v) => v !== null && Number.isFinite(v));
    const empty = !opts.series[0].points.some((p) => p[1] !== null && Number.isFinite(p[1]));
    svg.dataset.empty = String(empty);
    const [lo, hi] = valueRange(values.length ? values : [0, 1], opts.range || {});
    const xOf = (t) => x0 + (x1 - x0) * (t - opts.startS) / (opts.endS - opts.startS);
    const yOf = (v) => y0 - (y0 - y1) * (v - lo) / (hi - lo);

    const grid = el(svg, "g", {class: "grid"});
    const axes = el(svg, "g", {class: "axes"});
    const {step, ticks} = timeTicks(opts.startS, opts.endS);
    for (const t of ticks) {
      const x = xOf(t).toFixed(1);
      grid.appendChild(el(svg, "line", {x1: x, x2: x, y1: y1, y2: y0}));
      axes.appendChild(el(svg, "text", {class: "tick x", x: x, y: y0 + 18, "text-anchor": "middle",
                                   "data-time-s": t}, timeLabel(t, step)));
    }
    const vStep = niceStep(hi - lo, MAX_VALUE_TICKS);
    for (let v = Math.ceil(lo / vStep) * vStep; v <= hi + vStep / 1e6; v += vStep) {
      const y = yOf(v).toFixed(1);
      grid.appendChild(el(svg, "line", {x1: x0, x2: x1, y1: y, y2: y}));
      const label = Math.abs(v) < vStep / 1e6 ? "0" : String(Number(v.toPrecision(6)));
      axes.appendChild(el(svg, "text", {class: "tick y", x: x0 - 6, y: Number(y) + 4, "text-anchor": "end"},
                          label));
    }
    axes.appendChild(el(svg, "line", {class: "axis", x1: x0, x2: x1, y1: y0, y2: y0}));
    axes.appendChild(el(svg, "line", {class: "axis", x1: x0, x2: x0, y1: y1, y2: y0}));
    axes.appendChild(el(svg, "text", {class: "unit", x: x0 - 6, y: y1 - 10, "text-anchor": "end"}, opts.unit));
    svg.append(grid, axes);

    if (empty) {
      svg.appendChild(el(svg, "text", {class: "empty", x: (x0 + x1) / 2, y: (y0 + y1) / 2,
                                  "text-anchor": "middle"}, opts.emptyText));
    }
    for (const series of opts.series) {
      const runs = segments(series.points.filter((p) => p[0] >= opts.startS && p[0] <= opts.endS),
                            opts.gapS);
      if (!runs.length) continue;
      // A lone point is a zero-length stroke, which round caps draw as a dot.
      const d = runs.map((run) => run.map(([t, v], i) =>
        (i ? "L" : "M") + xOf(t).toFixed(1) + "," + yOf(v).toFixed(1)).join(" ")
        + (run.length === 1 ? " h0" : "")).join(" ");
      svg.appendChild(el(svg, "path", {class: series.className, d: d, "data-series": series.name,
                                  "data-points": runs.reduce((n, run) => n + run.length, 0),
                                  "data-segments": runs.length}));
    }
  }

  return {draw, segments, niceStep, timeTicks};
})();
