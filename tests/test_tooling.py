"""The project's own checks: ruff and mypy --strict stay clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    """ruff finds nothing in the package or the tests."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "realtime", "tests", "bench"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    """mypy --strict finds nothing in the package."""
    result = subprocess.run([sys.executable, "-m", "mypy", "realtime"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
