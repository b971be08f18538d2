"""The benchmark's plot: wall time and WinRM round trips against VMs, collection and baseline (nightly role).

Run in .venv-bench (matplotlib is there only): python -m hvtest.bench.plot RESULTS.json OUT.png
"""

from __future__ import annotations

import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position


def series(rows: list[dict], engine: str, figure: str) -> tuple[list[int], list[float]]:
    points = sorted((r["vms"], r[figure]) for r in rows if r["scenario"] == "nightly role" and r["engine"] == engine and r["hosts"] == 1)
    return [p[0] for p in points], [p[1] for p in points]


def draw(results: dict, target: pathlib.Path) -> None:
    rows = results["rows"]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for axis, (name, label) in zip(axes, (("wall", "wall time (s)"), ("operations", "WS-Man operations (round trips)"))):
        for engine, style in (("collection", "o-"), ("baseline", "s--")):
            xs, ys = series(rows, engine, name)
            if xs:
                axis.plot(xs, ys, style, label="hyperv.backup role" if engine == "collection" else "win_powershell per VM (baseline)")
        axis.set_xlabel("VMs on one host")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.suptitle("Nightly backup of one Hyper-V host (make bench, simulated host, real PowerShell)")
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target)


if __name__ == "__main__":
    draw(json.loads(pathlib.Path(sys.argv[1]).read_text(encoding="utf-8")), pathlib.Path(sys.argv[2]))
    print(sys.argv[2])
