"""`realtime bench --quick` runs end to end on a tiny configuration and writes its report.

Only the shape of the report is checked: no figure, no timing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_writes_a_report(database_url: str, tmp_path: Path) -> None:
    """Scenarios 1 (fan-out), 5 (reads) and 7 (references) at quick sizes give a full report."""
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nhand-written notes\n\n<!-- results:begin 1,5,7 -->\nold\n"
                   "<!-- results:end 1,5,7 -->\n\nmore notes\n")
    env = {**os.environ, "REALTIME_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "realtime", "bench", "1", "5", "7", "--quick", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = out.read_text()
    # What was outside the markers is kept; an earlier run of the same scenarios is replaced.
    assert report.startswith("# Benchmarks\n\nhand-written notes\n")
    assert report.rstrip().endswith("more notes")
    assert "\nold\n" not in report
    assert "- command: `realtime bench 1 5 7 --quick --out" in report
    for heading in ("### Targets", "### 1. Hot thread fan-out", "### 5. Reads",
                    "### 7. References: a minimal `websockets` broadcaster and a bare Starlette"):
        assert heading in report
    assert "failed" not in report, report
    # Every fan-out table has a header, a separator and at least one measured step.
    tables = re.findall(r"\| posts/s asked \|.*\n\|(?:---\|)+\n((?:\|.*\|\n)+)", report)
    assert len(tables) == 3
    for rows in tables:
        assert all(len(row.split("|")) == 15 for row in rows.strip().splitlines())
    # The bench's posts are gone from the database afterwards.
    assert "bench-" not in subprocess.run(
        [sys.executable, "-c", "import asyncio, asyncpg, sys\n"
         "async def main():\n"
         "    conn = await asyncpg.connect(sys.argv[1])\n"
         "    print(await conn.fetchval(\"SELECT string_agg(slug, ',') FROM posts\"))\n"
         "    await conn.close()\n"
         "asyncio.run(main())", database_url], capture_output=True, text=True).stdout


def test_quick_hostile_poster_scenario_writes_its_report(database_url: str,
                                                         tmp_path: Path) -> None:
    """Scenario 8 (a hostile poster) at quick size gives its table and its target row."""
    out = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "REALTIME_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "realtime", "bench", "8", "--quick", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = out.read_text()
    assert "### 8. Hostile poster" in report and "failed" not in report, report
    assert "| other subscribers' p99 delivery under a hostile poster at full speed |" in report
    rows = re.findall(r"^\| (quiet|hostile poster)[^|]*\|.*\|$", report, re.MULTILINE)
    assert len(rows) == 3, report


def test_quick_import_bench_reports_peak_memory(database_url: str, tmp_path: Path) -> None:
    """Scenario 12 at quick size imports both generated exports and reports their peak RSS."""
    out = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "REALTIME_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "realtime", "bench", "12", "--quick", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = out.read_text()
    assert "### 12. Import peak memory" in report and "failed" not in report, report
    rows = re.findall(r"^\| (wordpress|disqus) \| [\d,]+ \| [\d,]+ \| [\d.,]+ \| [\d,]+ \|"
                      r" ([\d,]+) \|$", report, re.MULTILINE)
    assert [kind for kind, _ in rows] == ["wordpress", "disqus"]
    assert all(int(peak.replace(",", "")) > 0 for _, peak in rows)
    assert "peak memory importing a 8 MB wordpress export" in report


def test_a_run_of_some_scenarios_keeps_the_others_results(tmp_path: Path) -> None:
    """A run of some scenarios replaces only an earlier run of the same ones; a full run
    replaces every block; the text around the blocks stays."""
    from bench.runner import SCENARIOS, run_key, write_report

    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nintro\n\n<!-- results:begin -->\nold full\n"
                   "<!-- results:end -->\n\nafterword\n")

    def block(key: str, text: str) -> str:
        return f"<!-- results:begin {key} -->\n{text}\n<!-- results:end {key} -->"

    write_report(out, block("8", "hostile 1"), "8")
    write_report(out, block("9,10", "browser"), "9,10")
    write_report(out, block("8", "hostile 2"), "8")
    text = out.read_text()
    assert "old full" in text and "hostile 2" in text and "browser" in text
    assert "hostile 1" not in text and text.count("results:begin") == 3
    assert text.startswith("# Benchmarks\n\nintro") and text.rstrip().endswith("afterword")
    key = run_key(sorted(SCENARIOS))
    write_report(out, block(key, "new full"), key)
    text = out.read_text()
    assert key == "all" and text.count("results:begin") == 1 and "new full" in text
    assert "old full" not in text and "hostile" not in text and "afterword" in text
