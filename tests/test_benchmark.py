"""scripts/benchmark.py keeps working: one run in quick mode, every section with figures.

No timing is asserted: the figures depend on the machine, and the benchmark
itself says which targets are met.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = {
    "Warm path": r"aws_lambda\.invoke, SQL loop in one statement\s+\d+\.\d+ ms\s+\d+\.\d+ x",
    "Cold start": r"overhead of the first invoke \(median difference\)\s+-?\d+\.\d+ ms",
    "invoke_many": r"invoke_many, max_concurrency \d+\s+[\d,]+\s",
    "Payload size": r"1 MB \([\d,]+ bytes\)\s+\d+\.\d+ ms",
    "Memory": r"invoke_many, max_concurrency 16\s+[+-]\d+\.\d+ MB\s+[+-]\d+\.\d+ MB",
    "Commit-time delivery": r"local emulator \(own process, SigV4 checked\)\s+[\d,]+\s+[\d,]+\s+\d+\.\d+ x",
    "Targets": r"invoke_many: trivial function >= 1000/s\s+[\d,]+/s\s+target (met|missed)",
}


def test_quick_run_prints_every_section_with_numbers():
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
