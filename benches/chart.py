"""Draws the goal ratios of a bench run (SUMMARY.json from tu-bench) as a PNG.

    python benches/chart.py benches/results/DATE-summary.json benches/results/DATE-ratios.png

One bar per goal of BENCH.md, oriented so that > 1 means transporturl is
better; the goal's threshold is the black tick; green = met, red = missed,
hatched = within noise (the min-max ranges of the two rows overlap); the grey
diamond is the same ratio for raw rustls (the ceiling for a rustls wrapper).
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        data = json.load(f)
    rows = [g for g in data["goals"] if g.get("measured")]
    if not rows:
        print("chart: no measured goals", file=sys.stderr)
        return
    rows.reverse()
    labels = [g["goal"] for g in rows]
    vals = [g["oriented"] for g in rows]
    fig, ax = plt.subplots(figsize=(13, 0.32 * len(rows) + 1.8))
    colors = ["#2e8b57" if g["met"] else "#c0392b" for g in rows]
    bars = ax.barh(range(len(rows)), vals, color=colors, height=0.7)
    for b, g in zip(bars, rows):
        if g.get("within_noise"):
            b.set_hatch("///")
            b.set_edgecolor("white")
    for i, g in enumerate(rows):
        ax.plot([g["target"], g["target"]], [i - 0.42, i + 0.42], color="black", linewidth=2)
        if g.get("ceiling"):
            ax.plot([g["ceiling"]], [i], marker="D", color="#555555", markersize=4)
        ax.text(g["oriented"] + 0.02, i, "%.2f" % g["oriented"], va="center", fontsize=7)
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xscale("log")
    ticks = [0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("ratio (log scale), > 1 = transporturl better.  Black tick: goal.  Grey diamond: raw rustls (ceiling).  Hatched: within noise.", fontsize=8)
    m = data.get("machine", {})
    s = data.get("sizes", {})
    ax.set_title(
        "transporturl bench %s — %s, %s vCPU, %s run, %s reps"
        % (data.get("stamp", ""), m.get("cpu", "?"), m.get("vcpus", "?"), s.get("mode", "?"), s.get("reps", "?")),
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main()
