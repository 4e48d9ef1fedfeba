"""Plots delivered messages/s against receivers, one panel per message size, one line per system,
from the suite's JSON. Usage: python plot.py suite.json suite.svg"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "sixcast": ("tab:blue", "-"),
    "sixcast-unpacked": ("tab:cyan", "-"),
    "raw": ("tab:gray", "-"),
    "zmq": ("tab:red", "-"),
    "py-sixcast": ("tab:blue", ":"),
    "pyzmq": ("tab:red", ":"),
    "node-sixcast": ("tab:green", "--"),
    "zeromq.js": ("tab:orange", "--"),
}


def main(source, target):
    with open(source) as file:
        results = json.load(file)
    cells = results["throughput"]
    sizes = sorted({cell["size"] for cell in cells})
    figure, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4.5), sharey=True)
    for axis, size in zip(axes if len(sizes) > 1 else [axes], sizes):
        systems = [s for s in STYLE if any(c["system"] == s and c["size"] == size for c in cells)]
        for system in systems:
            row = sorted(
                (c for c in cells if c["system"] == system and c["size"] == size),
                key=lambda c: c["receivers"],
            )
            color, line = STYLE[system]
            axis.plot(
                [c["receivers"] for c in row],
                [c["total"] for c in row],
                color=color,
                linestyle=line,
                marker="o",
                label=system,
            )
        axis.set_title(f"{size} B messages")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks([1, 4, 16], ["1", "4", "16"])
        axis.set_xlabel("receivers")
        axis.grid(True, which="both", alpha=0.3)
    (axes[0] if len(sizes) > 1 else axes).set_ylabel("delivered messages/s, all receivers")
    (axes[-1] if len(sizes) > 1 else axes).legend(fontsize="small")
    figure.suptitle(
        f"sixcast performance suite ({results['seconds_per_cell']} s per cell, "
        f"load average {results['load_average_before']})"
    )
    figure.tight_layout()
    figure.savefig(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
