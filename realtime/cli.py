"""The command line: `realtime serve`, `migrate`, `create-moderator`, `create-post`,
`author export|erase`, `bench`; `import` and `export` come from `realtime.importers.commands`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click

from . import db, demo
from .config import SETTINGS, Settings
from .errors import RealtimeError
from .importers.commands import create_data_dir_option, export, import_group
from .service import Service
from .store import Store

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def database(settings: Settings, *, create: bool = False) -> Iterator[str]:
    """The database URL: the configured one, or the embedded database for as long as needed.

    Says on stderr which database it is. Only with `create` does a data directory without
    an embedded database get a new one: a command run from the wrong directory must not
    quietly work on a database the server never sees.
    """
    if settings.database_url:
        click.echo(f"database: {_without_password(settings.database_url)}", err=True)
        yield settings.database_url
        return
    from .embedded import EmbeddedDatabaseError, EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        url = embedded.start(create=create)
    except EmbeddedDatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"database: the embedded one in {embedded.data_dir} ({embedded.what})", err=True)
    try:
        yield url
    finally:
        embedded.stop()


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _run(url: str, settings: Settings, work: Callable[[Service], Awaitable[T]]) -> T:
    async def main() -> T:
        pool = await db.open_pool(url, 2, settings.db_timeout_s,
                                  direct_url=settings.direct_database_url)
        service = Service(Store(pool), settings.replace(database_url=url))
        try:
            await service.start()
            return await work(service)
        finally:
            await service.close()
            await pool.close()

    try:
        return asyncio.run(main())
    except RealtimeError as exc:
        raise click.ClickException(exc.detail) from None


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # uvicorn re-raises SIGTERM after its graceful shutdown; turning it into SystemExit
    # lets the embedded database be stopped by the `finally` below.
    raise SystemExit(0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="realtime")
def main() -> None:
    """realtime: a self-hosted, real-time discussion server on PostgreSQL.

    Settings come from REALTIME_* environment variables (see the README); the flags below
    override them.
    """


def setting_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """A flag for every setting of the table, e.g. `--edit-window-s` for REALTIME_EDIT_WINDOW_S."""
    for setting in reversed(SETTINGS):
        kind: Any = click.Path(path_type=Path) if setting.type is Path else setting.type
        flag = "--" + setting.name.replace("_", "-")
        if setting.type is bool:
            flag = f"{flag}/--no-{setting.name.replace('_', '-')}"
        command = click.option(flag, setting.name, type=kind, default=None,
                               help=f"{setting.help} [{setting.env}, {setting.default}]")(command)
    return command


@main.command()
@setting_options
@click.option("--demo", "with_demo", is_flag=True,
              help="create a demo thread (once) and print its URL")
def serve(with_demo: bool, **options: Any) -> None:
    """Run the server (embedded database unless REALTIME_DATABASE_URL is set)."""
    from . import server

    settings = _settings(**options)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    with database(settings, create=True) as url:
        settings = settings.replace(database_url=url)
        if with_demo:
            _run(url, settings, demo.create_demo)
        # Worker processes build their app from the environment, so hand them every setting.
        os.environ.update({s.env: str(getattr(settings, s.name)) for s in SETTINGS})
        where = f"{settings.base_url}/p/{demo.SLUG}" if with_demo else f"{settings.base_url}/"
        # Said once the port is bound: a taken port ends the command before any promise.
        server.run(settings, on_listening=lambda: click.echo(f"realtime is serving at {where}",
                                                             err=True))


@main.command()
@create_data_dir_option
def migrate(create_data_dir: bool) -> None:
    """Apply database migrations and exit."""
    settings = _settings()
    with database(settings, create=create_data_dir) as url:
        async def apply(service: Service) -> None:
            return None

        _run(url, settings, apply)
    click.echo("database is up to date")


@main.command("create-moderator")
@click.argument("name")
@create_data_dir_option
def create_moderator(name: str, create_data_dir: bool) -> None:
    """Create a moderator (or reset a password); reads the password from stdin if piped."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    settings = _settings()
    with database(settings, create=create_data_dir) as url:
        moderator = _run(url, settings, lambda s: s.create_moderator(name, password))
    click.echo(f"moderator {moderator.username!r} is ready")


@main.command("create-post")
@click.argument("slug")
@click.option("--title", required=True, help="the post's title")
@click.option("--url", default=None, help="the page the thread belongs to")
@click.option("--moderation", type=click.Choice(["post", "pre"]), default=None,
              help="post: comments appear at once; pre: they wait for approval")
@create_data_dir_option
def create_post(slug: str, title: str, url: str | None, moderation: str | None,
                create_data_dir: bool) -> None:
    """Create or update a post (a thread)."""
    from pydantic import ValidationError

    from .models import SLUG
    from .schemas import PostFields, field_errors

    if not SLUG.match(slug):
        raise click.BadParameter("use 1..200 characters of a-z, 0-9, '.', '_' and '-'",
                                 param_hint="SLUG")
    try:
        fields = PostFields.model_validate({"title": title, "url": url, "moderation": moderation})
    except ValidationError as exc:
        raise click.ClickException(
            "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc))) from None
    settings = _settings()
    with database(settings, create=create_data_dir) as db_url:
        post, created = _run(db_url, settings,
                             lambda s: s.put_post(slug, fields.model_dump(exclude_none=True)))
    click.echo(f"post {post.slug!r} {'created' if created else 'updated'}:"
               f" {settings.base_url}/p/{post.slug}")


@main.command()
@click.argument("scenarios", nargs=-1,
                type=click.Choice([str(n) for n in range(1, 13)]))
@click.option("--quick", is_flag=True, help="small sizes and short steps (under a minute)")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("BENCHMARKS.md"), show_default=True,
              help="the Markdown report to write (the part between its result markers)")
def bench(scenarios: tuple[str, ...], quick: bool, out: Path) -> None:
    """Run the benchmark scenarios (all when none are named) on loopback; see BENCHMARKS.md.

    1 hot-thread fan-out, 2 many threads, 3 idle connections, 4 writes, 5 reads, 6 two nodes,
    7 the `websockets` reference, 8 a hostile poster, 9 the embed's first paint in a browser,
    10 a live change in the moderator console (a real browser), 11 logins under load, 12
    importing a large export (peak memory). Uses REALTIME_DATABASE_URL, else the embedded
    database.
    Needs the bench/ folder of a source checkout.
    """
    from .bench import BenchUnavailable, run

    command = " ".join(["realtime bench", *scenarios, *(["--quick"] if quick else []),
                        *(["--out", str(out)] if out != Path("BENCHMARKS.md") else [])])
    try:
        code = run(list(scenarios), quick=quick, out=out, command=command)
    except BenchUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


@main.group()
def author() -> None:
    """What is stored about one author (by e-mail): export it, or erase it."""


@author.command("export")
@click.argument("email")
def author_export(email: str) -> None:
    """Print, as JSON, everything stored under EMAIL: comments of any status (with IP
    address and user agent while kept) and the bans naming the author."""
    import orjson

    from .privacy import export_author

    settings = _settings()
    with database(settings) as url:
        found = _run(url, settings, lambda s: export_author(s, email))
    click.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())


@author.command("erase")
@click.argument("email")
@click.confirmation_option(prompt="Erase every comment of this author? This cannot be undone.")
def author_erase(email: str) -> None:
    """Erase every comment stored under EMAIL: each becomes a tombstone (text, name, e-mail,
    website, address and user agent cleared), live on open pages."""
    from .privacy import erase_author

    settings = _settings()
    with database(settings) as url:
        erased = _run(url, settings, lambda s: erase_author(s, email))
    click.echo(f"erased {len(erased)} comment{'s' if len(erased) != 1 else ''} of {email}")


main.add_command(import_group)
main.add_command(export)
