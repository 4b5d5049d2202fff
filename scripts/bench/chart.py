"""The chart: calls/s against concurrency N for invoke (pgbench -c N), invoke_many and deliver()
(max_concurrency N), with the floor under pgbench -c N as the baseline; SVG written by hand."""

import math
from xml.sax.saxutils import escape

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720, 380, 64, 230, 48, 44
SERIES = [  # (index in a sweep row, label, colour, dash)
    (1, "floor, pgbench -c N", "#888888", "6 4"),
    (0, "invoke, pgbench -c N", "#1f77b4", None),
    (2, "invoke_many, max_concurrency N", "#d62728", None),
    (3, "deliver(), max_concurrency N", "#2ca02c", None),
]


def svg(sweep, title, subtitle):
    """sweep: {N: [invoke, floor, invoke_many, deliver]} in calls/s."""
    ns = sorted(sweep)
    top = max(max(row) for row in sweep.values())
    magnitude = 10 ** math.floor(math.log10(top / 5))
    step = next(k * magnitude for k in (1, 2, 5, 10) if k * magnitude >= top / 5)  # 5 or fewer gridlines
    ymax = math.ceil(top / step) * step
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i):  # the concurrencies evenly spaced, 24 px in from the plot's sides
        return LEFT + 24 + ((plot_w - 48) * i / (len(ns) - 1) if len(ns) > 1 else plot_w / 2 - 24)

    def y(value):
        return TOP + plot_h * (1 - value / ymax)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<text x="{LEFT}" y="36" fill="#555">{escape(subtitle)}</text>']
    for k in range(int(round(ymax / step)) + 1):
        value = k * step
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
    for i, n in enumerate(ns):
        out.append(f'<text x="{x(i):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{n}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">concurrency N</text>')
    out.append(f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">calls/s</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    for row, (index, label, colour, dash) in enumerate(SERIES):
        points = " ".join(f"{x(i):.1f},{y(sweep[n][index]):.1f}" for i, n in enumerate(ns))
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dashing}/>')
        out.extend(f'<circle cx="{x(i):.1f}" cy="{y(sweep[n][index]):.1f}" r="3" fill="{colour}"/>'
                   for i, n in enumerate(ns))
        ly = TOP + 12 + 20 * row
        out.append(f'<line x1="{WIDTH - RIGHT + 12}" x2="{WIDTH - RIGHT + 36}" y1="{ly}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2"{dashing}/>')
        out.append(f'<text x="{WIDTH - RIGHT + 40}" y="{ly + 4}" font-size="11">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
