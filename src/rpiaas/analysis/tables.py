"""Terminal tables of a comparison: the summaries side by side, task by task, per node.

:func:`format_comparison` renders the result of
:func:`rpiaas.analysis.compare.compare_runs` (``compare.json``) for a terminal;
``rpiaas compare`` prints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_comparison", "format_value", "source_lines", "summary_note", "summary_sources"]


def format_value(v: Any) -> str:
    """A figure of a comparison as the tables and the report show it."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:,.4g}" if abs(v) < 1e3 else f"{v:,.0f}"
    return str(v)


def _pct(v: Any) -> str:
    return "—" if v is None else f"{v * 100:+.1f} %"


def _table(rows: list[list[str]], right: Sequence[bool]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        cells = [c.rjust(w) if right[i] else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("─" * w for w in widths))
    return lines


def format_comparison(result: dict[str, Any]) -> str:
    """Terminal tables: the summaries side by side, then each pair task by task and per node."""
    runs = result["runs"]
    letters = [chr(ord("A") + i) if i < 26 else str(i) for i in range(len(runs))]
    out = [f"{letters[i]}: {r['label']} ({r['mode']}, {r['policy']}, seed {r['seed']}, "
           f"{r['tasks']:,} tasks)" for i, r in enumerate(runs)]
    out += [f"   {line}" for line in source_lines(runs, letters)]
    out.append("")
    head = ["metric", "A"]
    for p in result["pairs"]:
        b = letters[p["b"]]
        head += [b, f"{b}−A", f"{b}/A−1"]
    if result["pairs"]:
        head += ["sources", "note"]
    rows = [head]
    keys = list(result["pairs"][0]["summary"]) if result["pairs"] else []
    for key in keys:
        row = [key, format_value(result["pairs"][0]["summary"][key]["a"])]
        for p in result["pairs"]:
            s = p["summary"].get(key, {})
            row += [format_value(s.get("b")), format_value(s.get("diff")), _pct(s.get("rel"))]
        row += [summary_sources(result, key, letters), summary_note(result, key, letters)]
        rows.append(row)
    out += _table(rows, [False] + [True] * (len(head) - 3) + [False, False] if result["pairs"] else [False, True])
    for p in result["pairs"]:
        b = letters[p["b"]]
        out.append("")
        if p["tasks"] is None:
            out.append(f"A and {b}: {p['note']}: only the summaries are compared")
            continue
        t = p["tasks"]
        out.append(f"A and {b}, task by task ({t['matched']:,} tasks, {t['both_completed']:,} "
                   f"completed in both; differences are {b} − A)")
        rows = [["", "mean", "mean |d|", "p95 |d|", "max |d|", "KS", "KS p", "Wasserstein",
                 "Cohen d", "verdict"]]
        for what, key in (("wait s", "wait"), ("response s", "response")):
            d = t[f"{key}_diff_s"]
            dist = t["distributions"][f"{key}_s"]
            rows.append([what, format_value(d["mean"]), format_value(d["mean_abs"]), format_value(d["p95_abs"]),
                         format_value(d["max_abs"]), format_value(dist["ks"]), format_value(dist["ks_pvalue"]),
                         format_value(dist["wasserstein_s"]), format_value(dist.get("cohens_d")),
                         _verdict(dist)])
        out += _table(rows, [False] + [True] * 8 + [False])
        tol = result.get("tolerance", {})
        out.append(f"verdict: |mean difference| within the tolerance of {format_value(tol.get('tolerance_s'))} s "
                   f"({tol.get('source', 'none')}) is agreement, whatever KS says")
        pull = t.get("pull_diff_s") or {}
        if pull.get("tasks"):
            out.append(f"image pulls ({pull['tasks']:,} tasks with a pull_s in both; something pulled: "
                       f"{pull['pulled_a']:,} in A, {pull['pulled_b']:,} in {b}): {b} − A mean "
                       f"{format_value(pull['mean'])} s, mean |d| {format_value(pull['mean_abs'])} s, "
                       f"max |d| {format_value(pull['max_abs'])} s")
        pl = t["placement"]
        agree = "—" if pl["agreement"] is None else f"{pl['agreement'] * 100:.1f} %"
        out.append(f"same node: {agree} of {pl['both_placed']:,} tasks placed in both")
        if t["worst"]:
            worst = ", ".join(f"{w['task_id']} ({w['diff_s']:+.4g} s)" for w in t["worst"][:5])
            out.append(f"largest response differences: {worst}")
    spread = result.get("spread")
    if spread:
        out.append("")
        out += _spread_lines(spread, runs, letters)
    out.append("")
    out += _node_lines(result, letters)
    return "\n".join(out)


def source_lines(runs: Sequence[dict[str, Any]], letters: Sequence[str]) -> list[str]:
    """Where each run's figures come from, a line per run."""
    out = []
    for i, r in enumerate(runs):
        src = r.get("sources") or {}
        if src:
            out.append(f"{letters[i]}: CPU utilisation {src.get('cpu_utilization')}, power and energy "
                       f"{src.get('energy_j')}, boots {src.get('boot_s')}, switching {src.get('switching')}")
    return out


def summary_sources(result: dict[str, Any], key: str, letters: Sequence[str]) -> str:
    """The sources of one summary metric in every run, ``A modelled · B measured`` ('' if none)."""
    pairs = result["pairs"]
    if not pairs or "source" not in pairs[0]["summary"].get(key, {}):
        return ""
    labels = [pairs[0]["summary"][key]["source"]["a"]]
    labels += [p["summary"].get(key, {}).get("source", {}).get("b", "—") for p in pairs]
    if len(set(labels)) == 1:
        return str(labels[0])
    return " · ".join(f"{letters[i]} {lab}" for i, lab in enumerate(labels))


def summary_note(result: dict[str, Any], key: str, letters: Sequence[str]) -> str:
    """``modelled on both sides`` where a pair's figures were both models ('' otherwise)."""
    pairs = result["pairs"]
    both = [p for p in pairs if p["summary"].get(key, {}).get("verdict")]
    if not both:
        return ""
    verdict = str(both[0]["summary"][key]["verdict"])
    if len(both) == len(pairs):
        return verdict
    return f"{verdict} ({', '.join(letters[p['b']] for p in both)} with A)"


def _spread_lines(spread: dict[str, Any], runs: Sequence[dict[str, Any]], letters: Sequence[str]) -> list[str]:
    letter = {r["label"]: letters[i] for i, r in enumerate(runs)}
    live = ", ".join(letter.get(x, x) for x in spread["live_runs"])
    out = [f"against the testbed's own spread (live runs {live}): a run agrees where its figure is inside "
           "the live runs' range or within 2 sd of their mean (a time also within the timing tolerance)"]
    head = ["metric", "live mean", "live sd", "live range", "range/mean"]
    for j in spread["judged"]:
        head += [letter.get(j, j), f"{letter.get(j, j)} vs mean", "verdict"]
    rows = [head]
    for key, m in spread["metrics"].items():
        row = [key, format_value(m["live_mean"]), format_value(m["live_sd"]),
               f"{format_value(m['live_min'])}–{format_value(m['live_max'])}", _pct(m["live_spread_rel"])]
        for j in spread["judged"]:
            r = m["runs"].get(j, {})
            row += [format_value(r.get("value")), _pct(r.get("error_rel")), r.get("verdict") or "—"]
        rows.append(row)
    right = [False, True, True, True, True] + [True, True, False] * len(spread["judged"])
    return out + _table(rows, right)


def _verdict(dist: dict[str, Any]) -> str:
    agree = dist.get("agree")
    return "—" if agree is None else "agree" if agree else "differ"


def _node_lines(result: dict[str, Any], letters: list[str]) -> list[str]:
    tables = result["nodes"]
    names = list(dict.fromkeys(n for t in tables for n in t))
    if not names:
        return []
    head = ["node"] + [f"{letters[i]} energy J" for i in range(len(tables))] + [
        f"{letters[i]} energy source" for i in range(len(tables))] + [
        f"{letters[i]} alloc util" for i in range(len(tables))] + [
        f"{letters[i]} CPU util" for i in range(len(tables))]
    rows = [head]
    for name in names[:50]:
        rows.append([name] + [format_value(t.get(name, {}).get("energy_j")) for t in tables]
                    + [str(t.get(name, {}).get("energy_source") or "—") for t in tables]
                    + [format_value(t.get(name, {}).get("mean_utilization")) for t in tables]
                    + [format_value(t.get(name, {}).get("mean_cpu_utilization")) for t in tables])
    lines = _table(rows, [False] + [True] * (len(head) - 1))
    if len(names) > 50:
        lines.append(f"… and {len(names) - 50:,} more nodes (compare.json has them all)")
    return lines
