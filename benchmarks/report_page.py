"""Benchmark of the design report on large masks: page size, and how long headless Chromium takes to draw it.

Workload: MASKS masks of N × N pixels (default 2 × 1000 × 1000), 4 uniform random levels (seeded), pitch 0.4 µm,
IP-Dip at 780 nm, 2 µm base, 100 nm slicing (a fab sheet built directly, no training or export). The page is
opened in headless Chromium (software WebGL, network blocked; tests/report_browser.py) and timed until every
section is drawn (``body[data-ready]``), then the 3D viewer is switched to the last mask and a printability spot
clicked. Reports the machine load before and after (``os.getloadavg``): the machine may be shared.
Writes JSON to benchmarks/results/report_page.json (override with --out).

Usage: PYTHONPATH=.:tests python benchmarks/report_page.py [--neurons 1000] [--masks 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from quaton_fab.printing.level_table import level_table
from quaton_fab.printing.materials import get_material
from quaton_fab.fab.report_html import block_size, write_design_report
from quaton_fab.fab.sheet import build_fab_sheet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from report_browser import browser_missing, open_page  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--masks", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "report_page.json")
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        raise SystemExit(f"no browser: {missing}")
    load_before = os.getloadavg()
    table = level_table(np.linspace(0, 1.5 * np.pi, 4), get_material("ip-dip"), 780e-9, 1.0, 2e-6, 100e-9)
    sheet = build_fab_sheet(table, pitch_m=400e-9, neurons=args.neurons, layers=args.masks, spacing_m=40e-6,
                            d_in_m=40e-6, d_out_m=40e-6)
    levels = np.random.default_rng(0).integers(0, 4, size=(args.masks, args.neurons, args.neurons))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        page_path = write_design_report(tmp, sheet, levels, export_name="bench")
        write_s = time.perf_counter() - t0
        size = page_path.stat().st_size
        t0 = time.perf_counter()
        with open_page(page_path, timeout_s=300) as (page, log):
            ready_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            page.select_option("#relief-mask", str(args.masks))
            page.wait_for_function(f"document.getElementById('relief3d').dataset.mask === '{args.masks}'")
            switch_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            page.locator(".spot").first.click()
            click_s = time.perf_counter() - t0
            problems = log.problems()
    result = {
        "masks": args.masks, "neurons": args.neurons, "page_bytes": size, "view3d_block": block_size(args.neurons),
        "write_s": round(write_s, 2), "open_until_drawn_s": round(ready_s, 2), "switch_3d_mask_s": round(switch_s, 2),
        "spot_click_s": round(click_s, 2), "browser_problems": problems,
        "load_before": load_before, "load_after": os.getloadavg(), "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
