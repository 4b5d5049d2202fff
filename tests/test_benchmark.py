"""scripts/benchmark.py keeps working: one run in quick mode, every section with figures.

No timing is asserted: the figures depend on the machine, and the benchmark
itself says which targets are met.
"""

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from bench import chart  # noqa: E402
NUMBER = r"[\d,]+(\.\d+)?"
SECTIONS = {
    "Warm path": r"aws_lambda\.invoke\('noop', \.\.\.\)\s+\d+\.\d+ ms\s+\d+\.\d+ x",
    "Throughput": r"(?m)^  1\s+" + r"\s+".join([NUMBER] * 4) + r"\s+\d+\.\d+ x",
    "Cold start": r"connect \+ a one-line plpython3u function\s+\d+\.\d+ ms(.|\n)*"
                  r"the first invoke's cost \(over connect \+ SELECT 1\)\s+-?\d+\.\d+ ms",
    "Payload size": r"1 MB \([\d,]+ bytes\)\s+\d+\.\d+ ms\s+\d+\.\d+ ms\s+\d+\.\d+ x",
    "Memory": r"invoke_many, max_concurrency 16\s+[+-]\d+\.\d+ MB\s+[+-]\d+\.\d+ MB",
    "Commit-time delivery": r"CALL aws_lambda\.deliver\(\) \(max_concurrency 32\)\s+[\d,]+\s+\d+\.\d+ x",
    "The delivery log as it grows": r"delivery_status\(\)\s+\d+\.\d+ ms\s+\d+\.\d+ ms\s+\d+\.\d+ x",
    "Targets": r"pgbench -c 8: invoke calls/s >= 0\.8 x the floor\s+\d+\.\d+ x\s+target (met|missed)",
}


@pytest.mark.skipif(not (shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK)),
                    reason="the benchmark's baseline endpoint is nginx")
def test_quick_run_prints_every_section_with_numbers():
    chart = os.path.join(ROOT, "docs", "benchmark.svg")
    before = os.stat(chart).st_mtime_ns if os.path.exists(chart) else None
    run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), "--quick"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert out.startswith("aws_lambda benchmark (quick mode")
    assert re.search(r"^  machine\s+.+, \d+ cores", out, re.M), out
    headers = [m.group(1) for m in re.finditer(r"^== (.+) ==$", out, re.M)]
    for name, figure in SECTIONS.items():
        titles = [h for h in headers if h.startswith(name)]
        assert titles, f"no section {name!r} in:\n{out}"
        body = out.split(f"== {titles[0]} ==", 1)[1].split("\n== ", 1)[0]
        assert re.search(figure, body), f"section {name!r} lacks its figures:\n{body}"
    assert "target met" in out or "target missed" in out
    assert "pgsql-http" in out
    assert (os.stat(chart).st_mtime_ns if os.path.exists(chart) else None) == before, "--quick rewrote the chart"


def test_chart_is_an_svg_with_a_line_per_path():
    sweep = {1: [1000, 4000, 2000, 2100], 8: [2500, 7500, 3000, 3100], 64: [2400, 7000, 3200, 3300]}
    svg = ET.fromstring(chart.svg(sweep, "calls/s", "a machine & its <cores>"))
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag == f"{ns}svg"
    lines = svg.findall(f"{ns}polyline")
    assert len(lines) == 4 and all(len(line.get("points").split()) == 3 for line in lines)
    assert "a machine & its <cores>" in [text.text for text in svg.iter(f"{ns}text")]
