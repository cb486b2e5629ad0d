"""Our own format, JSON lines: `realtime export` writes it, `realtime import jsonl` restores it.

The first line is the header `{"realtime_export": {"version": 1, "schema": N, ...}}`; every
other line is one row, `{"<table>": {column: value, ...}}`, tables in the order settings,
bans, posts, comments, imported_comments. The file holds e-mail and IP addresses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from ..store import Store
from ..store.transfer import TABLES
from .source import ImportFailed

HEADER = "realtime_export"
VERSION = 1


async def write_export(store: Store, out: IO[bytes], slug: str | None) -> Counter[str]:
    """Write the header and every exported row to `out`; returns the rows written per table."""
    header = {"version": VERSION, "schema": await store.schema_version(),
              "exported_at": datetime.now(UTC).isoformat(), "post": slug}
    out.write(orjson.dumps({HEADER: header}) + b"\n")
    counts: Counter[str] = Counter()
    async for table, row in store.export_rows(slug):
        out.write(b'{"%s":%s}\n' % (table.encode(), row.encode()))
        counts[table] += 1
    out.flush()
    return counts


async def restore(store: Store, path: Path, progress: Callable[[int], None]) -> Counter[str]:
    """Restore an export into an empty database, all or nothing."""
    schema = await store.schema_version()
    return await store.restore(_rows(path, schema, progress))


def _rows(path: Path, schema: int, progress: Callable[[int], None]
          ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) of each line after the header; a bad line ends it with ImportFailed."""
    try:
        with path.open("rb") as lines:
            done = 0
            rank = 0
            for number, line in enumerate(lines, start=1):
                done += len(line)
                progress(done)
                if number == 1:
                    _check_header(path, line, schema)
                    continue
                if not line.endswith(b"\n"):
                    raise ImportFailed(f"{path.name} is truncated: line {number} is incomplete")
                table, row = _parse(path, number, line)
                if TABLES.index(table) < rank:
                    raise ImportFailed(f"{path.name} line {number}: a {table} row after the"
                                       f" {TABLES[rank]} rows")
                rank = TABLES.index(table)
                yield table, row
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_header(path: Path, line: bytes, schema: int) -> None:
    try:
        header = orjson.loads(line)[HEADER]
        version, made_with = header["version"], header["schema"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        raise ImportFailed(f"unknown format: {path.name} is not a realtime export (no"
                           f" {HEADER} header on line 1)") from None
    if version != VERSION:
        raise ImportFailed(f"{path.name} is a version {version!r} export; this realtime reads"
                           f" version {VERSION}")
    if not isinstance(made_with, int) or made_with > schema:
        raise ImportFailed(f"{path.name} was made by a newer realtime (schema {made_with!r},"
                           f" this database {schema}): upgrade realtime first")


def _parse(path: Path, number: int, line: bytes) -> tuple[str, dict[str, Any]]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ImportFailed(f"{path.name} line {number} is not JSON: {exc}") from None
    if not isinstance(value, dict) or len(value) != 1:
        raise ImportFailed(f"{path.name} line {number}: expected one {{table: row}} object")
    ((table, row),) = value.items()
    if table not in TABLES or not isinstance(row, dict) or not row:
        raise ImportFailed(f"{path.name} line {number}: unknown row {table!r}")
    return table, row
