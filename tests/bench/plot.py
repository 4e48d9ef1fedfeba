"""Plots delivered messages/s against receivers, one panel per message size, one line per system,
from the suite's JSON, and writes the figures as Markdown tables beside the plot (suite.md), for
the README. Usage: python plot.py suite.json suite.svg"""

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
    markdown = target.rsplit(".", 1)[0] + ".md"
    with open(markdown, "w") as file:
        file.write(tables(results))
    print(f"wrote {markdown}")
    if not sizes:
        print("no throughput figures: no plot")
        return
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


def rate(value):
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.1f}k"


def tables(results):
    """The suite's figures as Markdown."""
    cells = {(c["system"], c["size"], c["receivers"]): c for c in results["throughput"]}
    lines = [
        f"Load average before the run: {results['load_average_before']}; "
        f"after: {results['load_average_after']}; {results['seconds_per_cell']} s per cell.",
        "",
        "Delivered messages/s per receiver (loss %), sender CPU seconds per million messages:",
        "",
        "| size | rcv | sixcast | sixcast unpacked | raw UDP | ZeroMQ | CPU/M sixcast | CPU/M ZeroMQ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in sorted({key[1] for key in cells}):
        for receivers in sorted({key[2] for key in cells if key[1] == size}):
            row = [str(size), str(receivers)]
            for system in ["sixcast", "sixcast-unpacked", "raw", "zmq"]:
                cell = cells.get((system, size, receivers))
                row.append(f"{rate(cell['per_receiver'])} ({cell['loss'] * 100:.1f})" if cell else "-")
            for system in ["sixcast", "zmq"]:
                cell = cells.get((system, size, receivers))
                row.append(f"{cell['sender_cpu_per_million']:.2f}" if cell else "-")
            if any(value != "-" for value in row[2:]):
                lines.append("| " + " | ".join(row) + " |")
    bindings = [("py-sixcast", "pyzmq"), ("node-sixcast", "zeromq.js")]
    if any((ours, size, receivers) in cells for ours, _ in bindings for (_, size, receivers) in cells):
        lines += [
            "",
            "Bindings, delivered messages/s per receiver (loss %):",
            "",
            "| size | rcv | Python sixcast | pyzmq | Node sixcast | zeromq.js |",
            "|---|---|---|---|---|---|",
        ]
        for size in sorted({key[1] for key in cells if key[0] == "py-sixcast" or key[0] == "node-sixcast"}):
            for receivers in sorted({key[2] for key in cells if key[0] in ("py-sixcast", "node-sixcast") and key[1] == size}):
                row = [str(size), str(receivers)]
                for system in ["py-sixcast", "pyzmq", "node-sixcast", "zeromq.js"]:
                    cell = cells.get((system, size, receivers))
                    row.append(f"{rate(cell['per_receiver'])} ({cell['loss'] * 100:.1f})" if cell else "-")
                lines.append("| " + " | ".join(row) + " |")
    if results.get("rtt"):
        lines += ["", "64 B round trip, µs: " + "; ".join(
            f"{row['system']} p50 {row['p50_us']}, p99 {row['p99_us']}" for row in results["rtt"]) + "."]
    if results.get("relay"):
        relay = {(c["system"], c["size"]): c for c in results["relay"]}
        lines += ["", "Relay path against user-space unicast forwarding, messages/s delivered (loss %): " + "; ".join(
            f"{size} B {rate(relay[('sixcast-relay', size)]['per_receiver'])} "
            f"({relay[('sixcast-relay', size)]['loss'] * 100:.1f}) vs "
            f"{rate(relay[('udp-forwarding', size)]['per_receiver'])} "
            f"({relay[('udp-forwarding', size)]['loss'] * 100:.1f})"
            for size in sorted({key[1] for key in relay})) + "."]
    scale = results.get("scale")
    if scale:
        channels = scale["channels"]
        lines += ["", f"One context on {channels['channels']} channels: heard on {channels['heard']}, "
                  f"RSS {channels['rss_kib'] / 1024:.1f} MiB, {channels['threads']} threads."]
        for key, who in [("flood", "one sender"), ("flood_fresh_senders", "a sender each")]:
            flood = scale.get(key)
            if flood:
                lines += ["", f"A flood of {flood['partial_messages_sent']} partial 1 MiB messages "
                          f"({who}): reassembly charge at most "
                          f"{flood['reassembly_peak_kib'] / 1024:.2f} MiB against its "
                          f"{flood['bound_kib'] / 1024:.0f} MiB bound; RSS "
                          f"{flood['rss_before_kib'] / 1024:.1f} -> {flood['rss_peak_kib'] / 1024:.1f} MiB; "
                          f"{flood['reassembly_dropped']} given up."]
        if scale.get("relay"):
            lines += ["", f"One relay process, tunnel clients each joined to one group that carries "
                      f"{scale['relay'][0]['rate']} datagrams/s:", "",
                      "| clients | tunnels | clients heard | relay RSS MiB (peak) | datagrams down/s "
                      "| relay CPU µs/datagram | relay CPU ms/s per client |",
                      "|---|---|---|---|---|---|---|"]
            for row in scale["relay"]:
                lines.append(
                    f"| {row['clients']} | {row['tunnels']} | {row['clients_heard']} "
                    f"| {row['rss_peak_kib'] / 1024:.1f} | {row['datagrams_down'] / row['seconds']:.0f} "
                    f"| {row['cpu_us_per_datagram_down']:.2f} "
                    f"| {row['cpu_seconds'] / row['seconds'] / row['clients'] * 1e3:.3f} |")
    fanout = results.get("fanout")
    if fanout:
        def median(values):
            values = sorted(values)
            return values[len(values) // 2] if values else None

        def figure(steered, size, system, receivers, key):
            return median([c[key] for c in fanout["cells"] if c["steered"] == steered and c["size"] == size
                           and c["system"] == system and c["receivers"] == receivers])

        ratios = {(r["steered"], r["size"], r["system"]): r for r in fanout["sender_cpu_ratios_16_to_1"]}
        lines += ["", "The sender's own cost (`--only fanout`): sender CPU seconds per million messages at a "
                  "fixed rate, 1 and 16 receivers, unsteered (the fan-out runs on the sender's CPU) and "
                  f"steered (RPS moves it to CPU {fanout['fanout_cpu']}; median of the rounds, "
                  "ratio's lowest-highest round in brackets); highest loss % of the cells:", "",
                  "| size | rate/s | system | unsteered 1 | unsteered 16 | ratio | steered 1 | steered 16 "
                  "| ratio | loss % |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for size, rate_per_second in sorted({(c["size"], c["rate"]) for c in fanout["cells"]}):
            for system in ["sixcast", "raw", "zmq"]:
                row = [str(size), str(rate_per_second), system]
                for steered in [False, True]:
                    for receivers in [1, 16]:
                        value = figure(steered, size, system, receivers, "sender_cpu_per_million")
                        row.append("-" if value is None else f"{value:.2f}")
                    ratio = ratios.get((steered, size, system))
                    if ratio is None:
                        row.append("-")
                    elif steered:
                        row.append(f"{ratio['median']:.2f} ({ratio['lowest']:.2f}-{ratio['highest']:.2f})")
                    else:
                        row.append(f"{ratio['median']:.2f}")
                losses = [c["loss"] for c in fanout["cells"] if c["size"] == size and c["system"] == system]
                row.append(f"{max(losses) * 100:.1f}" if losses else "-")
                lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| target (issue 6) | measured | limit | |", "|---|---|---|---|"]
    for target in results["targets"]:
        value = "-" if target["value"] is None else f"{target['value']:.2f}"
        comparison = ">=" if target["at_least"] else "<="
        verdict = {True: "met", False: "**missed**", None: "not measured"}[target["met"]]
        lines.append(f"| {target['target']} | {value} | {comparison} {target['limit']} | {verdict} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
