"""PNG plots of `tessera-bench compare`: sync time and wire bytes against N, Tessera
and automerge-repo, log scales. A phase that did not finish is drawn hollow at the
time it was given (a lower bound) and labelled.

    python plot_compare.py COMPARE.csv OUT_DIR
"""

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"tessera": ("Tessera (QUIC relay)", "tab:blue", "o"),
         "automerge-repo": ("automerge-repo (websocket sync server)", "tab:red", "s")}


def load(path):
    rows = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            done = r["push_finished"] == "true" and r["pull_finished"] == "true"
            rows.setdefault(r["system"], []).append(
                (int(r["n"]), float(r["sync_secs"]), int(r["sync_bytes"]), done,
                 int(r["push_done"]), int(r["pull_done"])))
    return {k: sorted(v) for k, v in rows.items()}


def draw(rows, column, ylabel, title, out):
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for system, points in rows.items():
        label, color, marker = STYLE.get(system, (system, "gray", "^"))
        # Nothing to draw on a log scale for a phase that moved no byte.
        points = [p for p in points if p[column] > 0]
        xs = [p[0] for p in points]
        ys = [p[column] for p in points]
        ax.plot(xs, ys, color=color, marker=marker, label=label)
        for n, y, done, pushed, pulled in ((p[0], p[column], p[3], p[4], p[5]) for p in points):
            if not done:
                ax.plot([n], [y], marker=marker, markersize=12, markerfacecolor="white", color=color)
                ax.annotate(f"did not finish\n(pushed {pushed}, loaded {pulled} of {n})",
                            (n, y), textcoords="offset points", xytext=(-14, -26), ha="right",
                            fontsize=8, color=color)
            else:
                text = f"{y:.2f} s" if column == 1 else f"{y / 1e6:.1f} MB"
                ax.annotate(text, (n, y), textcoords="offset points", xytext=(6, -12), fontsize=8,
                            color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ns = sorted({p[0] for points in rows.values() for p in points})
    ax.set_xticks(ns)
    ax.set_xticklabels([f"{n:,}" for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("attendee documents created on one node (N)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    print(f"wrote {out}")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_compare.py COMPARE.csv OUT_DIR")
    rows = load(sys.argv[1])
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    draw(rows, 1, "seconds (push to relay + fresh node pulls)",
         "Sync through a relay on loopback: time vs N", out / "compare-sync-time.png")
    draw(rows, 2, "wire bytes (both legs, application payload)",
         "Sync through a relay on loopback: bytes vs N", out / "compare-sync-bytes.png")


if __name__ == "__main__":
    main()
