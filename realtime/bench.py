"""`realtime bench`: the benchmark scenarios of `bench/` in a source checkout.

The load generators, the reference broadcaster and the scenario runner live in the top-level
`bench/` folder beside this package (they are not installed with it); this module finds that
folder and hands over to `bench.runner`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BenchUnavailable(RuntimeError):
    """The `bench/` folder is not there: the package was installed without its sources."""


def run(scenarios: list[str], *, quick: bool, out: Path, command: str) -> int:
    """Run the scenarios (all when none are named) and write the report to `out`."""
    if not (ROOT / "bench" / "runner.py").is_file():
        raise BenchUnavailable(f"no bench/ folder beside {Path(__file__).parent}: run"
                               " `realtime bench` from a source checkout (pip install -e .)")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    runner = importlib.import_module("bench.runner")
    code: int = runner.main(scenarios, quick, out, command)
    return code
