"""Statements-of-reasons aggregation: DuckDB against a pandas chunked reader, in one run.

Generates a synthetic dump (nested daily zips) of ROWS statements and of half as many,
aggregates each with DuckDB and with pandas in separate processes, and prints rows per second
and peak memory (the process's maximum resident set size). It also times a scan floor: DuckDB
reading the same parts and only counting their rows, the most any aggregation over this CSV
could reach on this machine.

Usage: python benchmarks/sor.py [--rows 5000000] [--days 5]
Targets: DuckDB >= 10x pandas throughput; DuckDB peak memory under 1 GB and flat as rows double.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dsarisk.sources.sor_synth import synthesize

HERE = Path(__file__).resolve().parent
CHILD = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
from dsarisk.sources.sor import aggregate_duckdb
from sor_baseline import aggregate_pandas, count_duckdb
engine, path = sys.argv[1], sys.argv[2]
started = time.perf_counter()
if engine == "duckdb":
    rows = int(aggregate_duckdb(path).table["statements"].sum())
elif engine == "scan":
    rows = count_duckdb(path)
else:
    rows = int(aggregate_pandas(path)["statements"].sum())
print(json.dumps({{"seconds": time.perf_counter() - started, "aggregated": rows,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def measure(engine: str, path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD.format(here=str(HERE)), engine, str(path)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sor-bench-") as scratch:
        results = {}
        for rows in (args.rows // 2, args.rows):
            folder = Path(scratch) / str(rows)
            started = time.perf_counter()
            synthesize(folder, rows=rows, days=args.days)
            size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
            print(f"generated {rows:,} rows ({size:,.0f} MB zipped) in {time.perf_counter() - started:.0f} s", flush=True)
            for engine in ("duckdb", "scan", "pandas"):
                results[(engine, rows)] = measure(engine, folder)
                r = results[(engine, rows)]
                print(f"  {engine:7s} {rows / r['seconds']:>12,.0f} rows/s  {r['seconds']:7.1f} s  "
                      f"peak {r['peak_mb']:7.0f} MB", flush=True)
        duck, pandas = results[("duckdb", args.rows)], results[("pandas", args.rows)]
        half, scan = results[("duckdb", args.rows // 2)], results[("scan", args.rows)]
        print(f"throughput DuckDB / pandas at {args.rows:,} rows: {pandas['seconds'] / duck['seconds']:.1f}x "
              "(target >= 10x)")
        print(f"scan floor / pandas: {pandas['seconds'] / scan['seconds']:.1f}x (no aggregation can do better here); "
              f"DuckDB aggregation / scan floor: {duck['seconds'] / scan['seconds']:.2f}")
        print(f"DuckDB peak memory: {half['peak_mb']:.0f} MB at {args.rows // 2:,} rows, {duck['peak_mb']:.0f} MB at "
              f"{args.rows:,} rows (target < 1024 MB, flat)")
        assert duck["aggregated"] == pandas["aggregated"], "the two engines disagree"


if __name__ == "__main__":
    main()
