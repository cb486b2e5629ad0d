"""`realtime import wordpress|disqus|jsonl FILE` and `realtime export [--post SLUG]`."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import click

from ..service import Service
from .jsonl import restore, write_export
from .progress import meter
from .run import import_file
from .source import ImportFailed, Report

FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@click.group("import")
def import_group() -> None:
    """Import comments from WordPress, Disqus or a realtime export.

    Uses REALTIME_DATABASE_URL, else the embedded database of REALTIME_DATA_DIR, which must
    exist already (start `realtime serve` there once, or pass --create-data-dir).
    """


def create_data_dir_option(command: Any) -> Any:
    """`--create-data-dir`: let a command other than `serve` make a new embedded database."""
    return click.option("--create-data-dir", is_flag=True,
                        help="create the embedded database if REALTIME_DATA_DIR has none")(command)


@import_group.command("wordpress")
@click.argument("file", type=FILE)
@create_data_dir_option
def wordpress(file: Path, create_data_dir: bool) -> None:
    """Import a WordPress export (WXR, from Tools → Export): posts become threads by URL,
    comments keep threading, authors, dates, statuses and pingbacks. Running it again adds
    only what is new."""
    _import_xml("wordpress", file, create_data_dir)


@import_group.command("disqus")
@click.argument("file", type=FILE)
@create_data_dir_option
def disqus(file: Path, create_data_dir: bool) -> None:
    """Import a Disqus XML export: threads become posts by link, comments keep threading,
    authors, dates and spam/deleted states. Running it again adds only what is new."""
    _import_xml("disqus", file, create_data_dir)


@import_group.command("jsonl")
@click.argument("file", type=FILE)
@create_data_dir_option
def jsonl(file: Path, create_data_dir: bool) -> None:
    """Restore a `realtime export` file into an empty database (ids, threading, statuses,
    bans and settings as they were), all or nothing."""
    with meter(file.stat().st_size) as bar:
        counts: Counter[str] = _in_database(
            create_data_dir, lambda s: restore(s.store, file, bar.phase("restoring")))
    click.echo("restored: " + ", ".join(f"{n:,} {table}" for table, n in counts.items()))


@click.command("export")
@click.option("--post", "slug", default=None, help="only this post and its comments")
def export(slug: str | None) -> None:
    """Write every post, comment (all statuses), ban and setting to stdout as JSON lines:
    `realtime export > site.jsonl`; `realtime import jsonl` restores it.

    The file holds personal data: commenters' e-mail and IP addresses, user agents and
    held or spam comments. Keep it as private as the database, and delete it when done.
    """

    async def work(service: Service) -> Counter[str]:
        if slug is not None:
            await service.get_post(slug)
        return await write_export(service.store, sys.stdout.buffer, slug)

    counts = _in_database(False, work)
    click.echo("exported: " + ", ".join(f"{n:,} {table}" for table, n in counts.items()),
               err=True)


def _import_xml(kind: str, file: Path, create_data_dir: bool) -> None:
    async def work(service: Service) -> Report:
        moderation = (await service.policy()).default_moderation
        with meter(file.stat().st_size) as bar:
            return await import_file(service.store, kind, file, moderation, bar,
                                     service.avatar)

    report = _in_database(create_data_dir, work)
    for line in report.lines():
        click.echo(line)


def _in_database(create: bool, work: Any) -> Any:
    """Run `work(service)` on the configured database; import errors become one line."""
    from ..cli import _run, _settings, database

    settings = _settings()
    try:
        with database(settings, create=create) as url:
            return _run(url, settings, work)
    except ImportFailed as exc:
        raise click.ClickException(str(exc)) from None
    except asyncpg.PostgresError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise click.ClickException(f"the database refused the rows: {first}") from None
