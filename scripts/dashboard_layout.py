#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Draws docs/observability/grafana_dash.json's panels where their gridPos
puts them (Grafana's 24-column grid) as an SVG: the picture of the
dashboard's layout in the README. Usage: dashboard_layout.py [OUT.svg]
(default docs/images/dashboard_layout.svg; "-" writes to stdout).
tests/e2e/test_dashboard.py checks the committed picture is this output."""
import json
import os
import sys
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))
DASH = os.path.join(HERE, "..", "docs", "observability", "grafana_dash.json")
COL, ROW = 40, 22  # px per grid column and grid row
FILL = {"row": "#e8e8e8", "stat": "#d9ead3", "timeseries": "#dae8fc",
        "state-timeline": "#fff2cc", "heatmap": "#f8cecc"}


def render(dash):
    panels = dash["panels"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) * ROW
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (24 * COL, height + 30),
           '<text x="4" y="%d" fill="#555">%s: %d panels as laid out in grafana_dash.json '
           '(colour = panel type)</text>' % (height + 20, escape(dash.get("title", "")),
                                              len(panels))]
    for p in panels:
        g = p["gridPos"]
        x, y, w, h = g["x"] * COL, g["y"] * ROW, g["w"] * COL, g["h"] * ROW
        kind = p.get("type", "")
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="#666"/>' %
                   (x + 1, y + 1, w - 2, h - 2, FILL.get(kind, "#ffffff")))
        title = escape(p.get("title", ""))
        if kind == "row":
            out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (x + 6, y + 15, title))
        else:
            out.append('<text x="%d" y="%d">%s</text>' % (x + 6, y + 16, title))
            out.append('<text x="%d" y="%d" fill="#555" font-size="10">%s</text>' %
                       (x + 6, y + 30, escape(kind)))
    out.append("</svg>\n")
    return "\n".join(out)


def main():
    with open(DASH) as f:
        svg = render(json.load(f))
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "docs", "images",
                                                                "dashboard_layout.svg")
    if dest == "-":
        sys.stdout.write(svg)
    else:
        with open(dest, "w") as f:
            f.write(svg)


if __name__ == "__main__":
    main()
