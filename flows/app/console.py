"""How a CLI command that runs a flow in this process meets the console.

``session(command, verbose)`` wraps the flow call:

- Prefect's and the core's INFO logs (and every traceback) go to a file under
  ``RECSYS_HOME/logs``, whose path the command prints at the end;
- quiet, the default: Prefect's console handlers are taken off for the rest of the process
  (what Prefect logs at exit, stopping its temporary server, goes to the file too), whatever
  else writes to stdout or stderr while the flow runs (MLflow, libraries' progress bars) goes
  to the file as well, and the progress board (``progress``) shows on stderr;
- verbose: the logs stream to the console as Prefect configures them, as they always did;
- an exception ends the command with one line on stderr: exit code 2 for bad input or state
  (``ValueError``, ``LookupError``, ``FileNotFoundError``: the project's ``DataError``, a
  threshold exceeded, no champion), else 1.

Flow runs from deployments are not CLI sessions: their logging stays Prefect's own.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NoReturn, TextIO

import typer
from rich.console import Console
from rich.markup import escape

from flows.app.checks import one_line
from flows.app.progress import Board, shown, watching
from recsys_core.config import get_settings

USER_ERRORS = (ValueError, LookupError, FileNotFoundError)
"""Exceptions that mean bad input or state (exit code 2); anything else is a bug (1)."""
CONSOLE_LOGGERS = ("", "prefect._internal", "uvicorn", "fastapi")
"""Loggers that Prefect's logging.yml gives a console handler ("" is the root)."""
FORMAT = "%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"
FLOW_RUN_FORMAT = "%(asctime)s | %(levelname)-7s | Flow run %(flow_run_name)r - %(message)s"
TASK_RUN_FORMAT = "%(asctime)s | %(levelname)-7s | Task run %(task_run_name)r - %(message)s"

log = logging.getLogger(__name__)


@dataclass
class Session:
    """A command's console: results to ``out`` (stdout), progress and errors to ``err``.

    Args:
        out: stdout.
        err: stderr.
        log_path: the command's log file.
        verbose: whether logs stream to the console.
    """

    out: Console
    err: Console
    log_path: Path
    verbose: bool

    def where(self, **places: str | Path | None) -> None:
        """Print where things are, one ``name  place`` line each (None: left out), and the log.

        Args:
            places: name (underscores become spaces) -> path, URI or command.
        """
        rows = {name.replace("_", " "): str(place) for name, place in places.items()
                if place is not None} | {"log": str(self.log_path)}
        width = max(map(len, rows))
        for name, place in rows.items():
            self.out.print(f"{name:<{width}}  {place}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def session(command: str, verbose: bool = False) -> Iterator[Session]:
    """Run the block (a flow call) with the command's log file, progress board and errors.

    Args:
        command: the command's name (names the log file).
        verbose: stream logs to the console instead of showing the board.

    Raises:
        typer.Exit: the block raised (after one line on stderr).
    """
    err = Console(file=sys.stderr, highlight=False)
    current = Session(Console(file=sys.stdout, highlight=False), err, _log_path(command), verbose)
    _route_logs(current.log_path, quiet=not verbose)
    board = Board(on_close=None if err.is_terminal else lambda stage: err.print(board.row(stage)))
    with contextlib.ExitStack() as stack:
        if not verbose:
            board.begin(*_api_stage())
            stack.enter_context(shown(board, err))
            stack.enter_context(watching(board))
            stack.enter_context(_to_file(current.log_path))
        try:
            yield current
        except typer.Exit:
            raise
        except (Exception, KeyboardInterrupt) as exc:
            board.fail_running()
            stack.close()
            _fail(current, exc)


def _fail(current: Session, exc: BaseException) -> NoReturn:
    """One line on stderr; the traceback to the log file (and, verbose, the console)."""
    log.error("%s failed", current.log_path.stem, exc_info=exc)
    if isinstance(exc, KeyboardInterrupt):
        message, code = "interrupted", 130
    else:
        message, code = one_line(exc), 2 if isinstance(exc, USER_ERRORS) else 1
    hint = "" if current.verbose else f" (log: {current.log_path})"
    current.err.print(f"[red]error:[/red] {escape(message + hint)}", highlight=False,
                      soft_wrap=True)
    raise typer.Exit(code) from exc


def _log_path(command: str) -> Path:
    folder = get_settings().logs_dir
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{command}-{datetime.now():%Y%m%d-%H%M%S}"
    path, n = folder / f"{stem}.log", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.log"
    return path


def _api_stage() -> tuple[str, str]:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return ("connect to Prefect", url) if url else ("start Prefect", "temporary local API")


class _Routing:
    """Where this process's console loggers write: the session's file (quiet: only there).

    The routing lasts until the next session, or until the process exits.
    """

    file: logging.Handler | None = None
    removed: list[tuple[logging.Logger, logging.Handler]] = []


def _route_logs(path: Path, quiet: bool) -> None:
    import prefect  # noqa: F401  (its import configures logging: the handlers to route)
    from prefect.logging.formatters import PrefectFormatter

    for logger, handler in _Routing.removed:
        logger.addHandler(handler)
    _Routing.removed = []
    if _Routing.file is not None:
        for name in CONSOLE_LOGGERS:
            logging.getLogger(name).removeHandler(_Routing.file)
        _Routing.file.close()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(PrefectFormatter(FORMAT, flow_run_fmt=FLOW_RUN_FORMAT,
                                         task_run_fmt=TASK_RUN_FORMAT))
    for name in CONSOLE_LOGGERS:
        logger = logging.getLogger(name)
        for console in [h for h in logger.handlers if quiet and _is_prefect_console(h)]:
            logger.removeHandler(console)
            _Routing.removed.append((logger, console))
        logger.addHandler(handler)
    _Routing.file = handler
    core = logging.getLogger("recsys_core")
    if core.level == logging.NOTSET:
        core.setLevel(logging.INFO)


def _is_prefect_console(handler: logging.Handler) -> bool:
    """A stream handler of Prefect's logging.yml (its console and its internal debug one)."""
    return (isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
            and type(handler).__module__.startswith("prefect."))


@contextlib.contextmanager
def _to_file(path: Path) -> Iterator[TextIO]:
    with path.open("a", encoding="utf-8", buffering=1) as stream, \
            contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield stream
