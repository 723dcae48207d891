"""Two policies on the quickstart scenario, analysed in pandas: Gantt charts and a comparison.

    .venv/bin/python examples/analysis.py [OUT_DIR]     (default: runs/analysis-example)

Needs the analysis extra (pandas, pyarrow); the PNG needs matplotlib (the sweep
extra), the SVG nothing.  The same lines work cell by cell in a notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import rpiaas
from rpiaas.analysis.gantt import gantt_model, gantt_png, gantt_svg
from rpiaas.rundir.reader import load_run as load_arrays

HERE = Path(__file__).resolve().parent
SCENARIO = HERE.parent / "scenarios" / "quickstart.yaml"


def main(out: Path) -> None:
    small = {"workload.generator.count": 200}
    # 1. run two policies (the second writes Parquet tables), then open them again from disk
    rpiaas.run(SCENARIO, policy="best_fit", overrides=small, out=out / "best_fit")
    rpiaas.run(SCENARIO, policy="worst_fit", overrides=small, out=out / "worst_fit",
               tables="parquet")
    best, worst = rpiaas.load_run(out / "best_fit"), rpiaas.load_run(out / "worst_fit")

    # 2. the tables are DataFrames: e.g. mean wait per number of cores asked for
    for r in (best, worst):
        waits = r.tasks.groupby("cores")["wait_s"].mean().round(1).to_dict()
        busiest = r.tasks["node"].value_counts().idxmax()
        print(f"{r.record['policy']:>9}: mean wait by cores {waits}; busiest node {busiest}")

    # 3. their Gantt charts on one time axis (SVG always, PNG when matplotlib is there)
    runs = [load_arrays(r.path, series=False) for r in (best, worst)]
    for run, r in zip(runs, (best, worst), strict=True):
        run.label = r.record["policy"]
    models = [gantt_model(run) for run in runs]
    (out / "gantt.svg").write_text(gantt_svg(models, standalone=True), encoding="utf-8")
    print(f"wrote {out / 'gantt.svg'}")
    try:
        gantt_png(models, out / "gantt.png")
        print(f"wrote {out / 'gantt.png'}")
    except ModuleNotFoundError:
        print("no matplotlib: skipped gantt.png")

    # 4. the comparison as DataFrames: summary metrics and per-task differences
    cmp = best.compare(worst)
    print(cmp.summary.loc[["mean_wait_s", "mean_response_s", "energy_j"], ["a", "b", "diff"]])
    moved = cmp.tasks[~cmp.tasks["same_node"]]
    print(f"{len(moved)} of {len(cmp.tasks)} tasks ran on another node; "
          f"largest response change {cmp.tasks['response_s_diff'].abs().max():.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs") / "analysis-example")
