// Shared by the dashboard's pages: talking to the master's API, formatting, the error banner.
"use strict";

window.rpiaas = (function () {
  const DASH = "—";  // a value we do not have: never shown as 0
  const MIN_REFRESH_S = 1;
  const MAX_REFRESH_S = 30;
  // A master that accepts the connection but never answers is as down as one that refuses it.
  const REQUEST_TIMEOUT_MS = 10000;

  async function getJSON(path) {
    const response = await fetch(path, {cache: "no-store", headers: {Accept: "application/json"},
                                        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)});
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try {
        const body = await response.json();
        if (body && body.error) message += ": " + body.error;
      } catch (e) { /* not JSON: the status says enough */ }
      throw new Error(message);
    }
    return response.json();
  }

  // The page refreshes once per poll interval: faster shows nothing new, slower goes stale.
  function refreshSeconds(pollIntervalS) {
    const s = Number(pollIntervalS);
    if (!Number.isFinite(s)) return MAX_REFRESH_S / 3;
    return Math.min(MAX_REFRESH_S, Math.max(MIN_REFRESH_S, s));
  }

  function isNumber(x) {
    return typeof x === "number" && Number.isFinite(x);
  }

  function percent(fraction, digits) {
    return isNumber(fraction) ? (100 * fraction).toFixed(digits === undefined ? 1 : digits) + " %" : DASH;
  }

  function mb(x) {
    return isNumber(x) ? Math.round(x).toString() : DASH;
  }

  function celsius(x) {
    return isNumber(x) ? x.toFixed(1) + " °C" : DASH;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function nowS() {
    return Date.now() / 1000;
  }

  function ago(timeS) {
    return isNumber(timeS) ? duration(nowS() - timeS) + " ago" : "never";
  }

  function clock(timeS) {
    return isNumber(timeS) ? new Date(timeS * 1000).toLocaleString() : "";
  }

  function stateName(online, node) {
    if (online !== true && node && isNumber(node.booting_since_s)) return "booting";
    return online === true ? "online" : online === false ? "offline" : "unknown";
  }

  // "online for 3 min", "offline for 10 s", "not yet polled"
  function stateText(node) {
    const state = stateName(node.online, node);
    if (state === "booting") return "booting for " + duration(nowS() - node.booting_since_s);
    if (state === "unknown") return "not yet polled";
    return isNumber(node.changed_s) ? state + " for " + duration(nowS() - node.changed_s) : state;
  }

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
    return el;
  }

  function showError(message) {
    const banner = document.getElementById("error");
    banner.textContent = message;
    banner.hidden = false;
    document.body.dataset.state = "error";
  }

  function clearError() {
    document.getElementById("error").hidden = true;
    document.body.dataset.state = "ok";
  }

  // Run `step` now and then again `seconds()` after each run ends, failures included.
  function every(seconds, step) {
    async function run() {
      try {
        await step();
      } finally {
        window.setTimeout(run, seconds() * 1000);
      }
    }
    run();
  }

  return {DASH, getJSON, refreshSeconds, isNumber, percent, mb, celsius, duration, nowS, ago, clock,
          stateName, stateText, setText, showError, clearError, every};
})();
