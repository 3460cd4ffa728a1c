#!/usr/bin/env python3
"""Turns im-bench --json reports into an SVG chart and a Markdown table (standard library only).

Usage:
  bench/chart.py [--metric delivery|ack|last_member|first_member] [--title T] [--out chart.svg]
                 [--markdown table.md] REPORT.json...

The chart plots latency percentiles (p50, p90, p99, p99.9; logarithmic axis) against the offered
rate of each report, plus the delivered rate against the offered rate on a second panel, so the
knee where the cluster stops keeping up shows in both. The table has one row per report.
"""
import argparse
import html
import json
import math
import sys

PERCENTILES = [("p50", "#1b9e77"), ("p90", "#d95f02"), ("p99", "#7570b3"), ("p999", "#e7298a")]


def load(paths):
    reports = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        if report.get("tool") != "im-bench":
            sys.exit(f"{path}: not an im-bench report")
        reports.append(report)
    return sorted(reports, key=lambda r: r["params"]["rate"])


def nice_ticks_log(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
        e += 1
    return ticks


def nice_ticks_linear(hi, count=5):
    raw = hi / count
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=mag)
    return [i * step for i in range(int(hi / step) + 2) if i * step <= hi * 1.0001]


def fmt_num(v):
    if v >= 1000 and v % 1000 == 0:
        return f"{int(v / 1000)}k"
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


class Panel:
    def __init__(self, x, y, w, h, xmax, ylo, yhi, ylog):
        self.x, self.y, self.w, self.h = x, y, w, h
        self.xmax, self.ylo, self.yhi, self.ylog = xmax, ylo, yhi, ylog

    def px(self, v):
        return self.x + self.w * v / self.xmax

    def py(self, v):
        if self.ylog:
            v = max(v, self.ylo)
            f = (math.log10(v) - math.log10(self.ylo)) / (math.log10(self.yhi) - math.log10(self.ylo))
        else:
            f = (v - self.ylo) / (self.yhi - self.ylo)
        return self.y + self.h * (1 - f)


def axes(out, panel, xticks, yticks, xlabel, ylabel, yfmt):
    out.append(f'<rect x="{panel.x}" y="{panel.y}" width="{panel.w}" height="{panel.h}" '
               'fill="none" stroke="#444"/>')
    for t in xticks:
        x = panel.px(t)
        out.append(f'<line x1="{x:.1f}" y1="{panel.y}" x2="{x:.1f}" y2="{panel.y + panel.h}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{panel.y + panel.h + 16}" text-anchor="middle">'
                   f'{fmt_num(t)}</text>')
    for t in yticks:
        y = panel.py(t)
        out.append(f'<line x1="{panel.x}" y1="{y:.1f}" x2="{panel.x + panel.w}" y2="{y:.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{panel.x - 6}" y="{y + 4:.1f}" text-anchor="end">{yfmt(t)}</text>')
    out.append(f'<text x="{panel.x + panel.w / 2}" y="{panel.y + panel.h + 36}" '
               f'text-anchor="middle">{html.escape(xlabel)}</text>')
    out.append(f'<text transform="translate({panel.x - 52},{panel.y + panel.h / 2}) rotate(-90)" '
               f'text-anchor="middle">{html.escape(ylabel)}</text>')


def polyline(out, panel, points, color, dash=""):
    pts = " ".join(f"{panel.px(x):.1f},{panel.py(y):.1f}" for x, y in points)
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash_attr}/>')
    for x, y in points:
        out.append(f'<circle cx="{panel.px(x):.1f}" cy="{panel.py(y):.1f}" r="3" fill="{color}"/>')


def chart(reports, metric, title):
    key = f"{metric}_us"
    rows = [(r["params"]["rate"], r["latency_ms"].get(key), r["rates"]) for r in reports]
    rows = [row for row in rows if row[1]]
    if not rows:
        sys.exit(f"no report has {key} latencies")
    xmax = max(rate for rate, _, _ in rows) * 1.08
    values = [lat[p] for _, lat, _ in rows for p, _ in PERCENTILES if lat[p] > 0]
    ylo = 10 ** math.floor(math.log10(max(min(values), 0.01)))
    yhi = 10 ** math.ceil(math.log10(max(values)))
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="900" height="420" '
           'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="450" y="22" text-anchor="middle" font-size="15">{html.escape(title)}</text>']
    left = Panel(80, 50, 330, 300, xmax, ylo, yhi, True)
    axes(out, left, nice_ticks_linear(xmax), nice_ticks_log(ylo, yhi), "offered messages/s",
         f"{metric} latency (ms, log)", fmt_num)
    for i, (p, color) in enumerate(PERCENTILES):
        polyline(out, left, [(rate, max(lat[p], ylo)) for rate, lat, _ in rows], color)
        out.append(f'<rect x="{left.x + 10}" y="{left.y + 10 + 16 * i}" width="12" height="3" '
                   f'fill="{color}"/><text x="{left.x + 28}" y="{left.y + 15 + 16 * i}">'
                   f'{"p99.9" if p == "p999" else p}</text>')
    delivered = [(rate, rates.get("delivered_per_sec", 0)) for rate, _, rates in rows]
    dmax = max(max(d for _, d in delivered), xmax) * 1.05
    right = Panel(540, 50, 330, 300, xmax, 0, dmax, False)
    axes(out, right, nice_ticks_linear(xmax), nice_ticks_linear(dmax), "offered messages/s",
         "delivered / s", fmt_num)
    polyline(out, right, [(0, 0), (xmax, xmax)], "#bbb", "4,4")
    polyline(out, right, delivered, "#1f78b4")
    out.append(f'<text x="{right.x + 10}" y="{right.y + 16}" fill="#888">dashed: delivered = '
               'offered</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def markdown(reports, metric):
    key = f"{metric}_us"
    lines = [f"| offered/s | sent/s | acked/s | delivered/s | ack p50 / p99 | {metric} p50 | p90 | "
             "p99 | p99.9 | max | errors | missing / dup / reordered | tool cores |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in reports:
        lat = r["latency_ms"].get(key, {})
        ack = r["latency_ms"].get("ack_us", {})
        c, rates = r["counters"], r["rates"]
        errors = sum(r["errors"].values()) if r["errors"] else 0
        cell = lambda d, k: f'{d.get(k, 0):,.1f}' if d else "-"
        lines.append(
            f'| {r["params"]["rate"]:,.0f} | {rates.get("sent_per_sec", 0):,.0f} | '
            f'{rates.get("acked_per_sec", 0):,.0f} | {rates.get("delivered_per_sec", 0):,.0f} | '
            f'{cell(ack, "p50")} / {cell(ack, "p99")} ms | {cell(lat, "p50")} | {cell(lat, "p90")} | '
            f'{cell(lat, "p99")} | {cell(lat, "p999")} | {cell(lat, "max")} | {errors} | '
            f'{c["missing"]} / {c["duplicates"]} / {c["reordered"]} | '
            f'{r["tool_cost"]["cores_during_send"]:.2f} |')
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+")
    parser.add_argument("--metric", default="delivery",
                        choices=["delivery", "ack", "first_member", "last_member"])
    parser.add_argument("--title", default="im-bench")
    parser.add_argument("--out", help="SVG file to write")
    parser.add_argument("--markdown", help="Markdown table file to write ('-': stdout)")
    args = parser.parse_args()
    reports = load(args.reports)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(chart(reports, args.metric, args.title))
    if args.markdown:
        table = markdown(reports, args.metric)
        if args.markdown == "-":
            sys.stdout.write(table)
        else:
            with open(args.markdown, "w", encoding="utf-8") as f:
                f.write(table)


if __name__ == "__main__":
    main()
