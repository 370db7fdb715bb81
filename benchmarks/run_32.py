"""Wall time of `dsarisk run` on a generated year of 32 judged modules (readable at 32 modules
is only useful if it is also fast enough at 32 modules).

Usage: python benchmarks/run_32.py [--modules 32] [--jobs N] [--public]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.generated_years import FOUR_BY_FOUR_PRODUCT, write_year  # noqa: E402

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--public", action="store_true", help="the non-confidential build (no exploration)")
    args = parser.parse_args()
    os.environ.pop("MPLBACKEND", None)
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        write_year(scratch / "data", modules=args.modules, methodology=FOUR_BY_FOUR_PRODUCT)
        command = [str(BIN / "dsarisk"), "run", "--year", "2030", "--data-dir", str(scratch / "data"), "--out-dir",
                   str(scratch / "reports"), "--jobs", str(args.jobs), "--no-progress", *(["--public"] * args.public)]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - started
    notebooks = args.modules + 1 + (0 if args.public else 1)
    print(f"modules: {args.modules}, notebooks: {notebooks}, jobs: {args.jobs}, cores: {os.cpu_count()}")
    print(f"run {seconds:6.1f} s   ({seconds / notebooks:.2f} s per notebook)")


if __name__ == "__main__":
    main()
