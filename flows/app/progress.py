"""The progress display of a CLI command that runs a flow in this process.

Prefect opens an OpenTelemetry span for every flow and task run. ``watching(board)`` adds a
span processor that turns those spans into the board's stages, so tasks and flows need no
progress code of their own:

- each task or subflow run directly under the command's flow is a stage; consecutive runs of
  one task (with the same ``GROUPS`` key: the part sources are trained on) share a stage, also
  when groups run side by side (the validation carves), each group in its own stage;
- the task runs inside a subflow are that stage's progress: documents embedded, users ranked
  (``UNITS``), and the rate;
- a stage's name and detail come from ``LABELS`` and the task's parameters, read from
  Prefect's run context when its span starts; the state (done, cached, failed) and the time
  from the span's end.

On a terminal the board is redrawn in place (rich ``Live``); elsewhere (a pipe, a CI log) each
stage is printed once, when it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

LABELS = {
    "check_encoder": "check encoder", "ingest": "validate and load",
    "prepare": "features and split", "embed": "embed items",
    "size_guard": "size plan", "tune_sources": "tune sources", "train_source": "train sources",
    "tune_fusion": "tune fusion", "evaluate": "evaluate", "register": "register in MLflow",
    "promote": "promotion gate", "publish": "publish artifacts", "challenge": "challenge champion",
    "rollback": "roll back champion", "plan_batch": "plan batch", "recommend-shards": "recommend",
    "load_recommendations": "load warehouse", "requested_users": "read request",
    "begin_erasure": "open audit", "erase_data": "erase data and files",
    "erase_model": "erase from models", "replace_champion": "replace champion",
    "finish_erasure": "close audit", "redact_requests": "redact flow runs",
}
"""Task or flow name -> the stage's name on the board (others show their own name)."""

DETAILS = {"ingest": "{data}", "tune_sources": "{trials} trials per source",
           "tune_fusion": "{trials} trials", "challenge": "margin {margin:g}"}
"""Task name -> its stage's detail: a format string over the task run's parameters."""

GROUPS = {"train_source": "part"}
"""Task name -> the parameter whose value keeps consecutive runs in one stage (by default
consecutive runs of a task share one)."""

NAMES = {"train_source": "name"}
"""Task name -> the parameter naming what one run of a grouped task did (listed)."""


def _range_size(shard: tuple[int, int]) -> int:
    return shard[1] - shard[0]


UNITS: dict[str, tuple[str, Callable[[Any], int]]] = {
    "embed_shard": ("documents", len), "rank_shard": ("users", _range_size),
    "recommend_shard": ("users", _range_size)}
"""Task name (inside a subflow) -> (unit, its count in the run's ``shard`` parameter), for the
stage's count and rate."""
LABEL_WIDTH, TIME_WIDTH = 22, 7

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """One line of the board: a task (or a run of one task), a subflow, or a step before both.

    A stage has ``ended`` when nothing of it runs; it is ``closed`` once a later stage began or
    the flow ended, so it can no longer change (a group of one task's runs may start again).
    """

    label: str
    detail: str = ""
    key: tuple[str, str] = ("", "")
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    closed: bool = False
    failed: bool = False
    running: int = 0
    runs: int = 0
    cached: int = 0
    names: list[str] = field(default_factory=list)
    amount: int = 0
    unit: str = ""
    units_since: float | None = None
    units_until: float | None = None

    @property
    def seconds(self) -> float:
        """Elapsed so far, or in all once ended."""
        return (self.ended or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Units per second, from the first unit run's start to the last one's end."""
        if self.units_since is None or self.units_until is None:
            return 0.0
        return self.amount / max(self.units_until - self.units_since, 1e-3)

    def describe(self) -> str:
        """The detail column: parameters, what was done, counts and rate."""
        parts = [self.detail] if self.detail else []
        if self.names:
            parts.append(", ".join(self.names))
        if self.unit:
            rate = f"{self.rate:,.0f}" if self.rate >= 10 else f"{self.rate:.1f}"
            parts.append(f"{self.amount:,} {self.unit} · {rate}/s")
        if self.ended is not None and self.runs and self.cached == self.runs:
            parts.append("cached")
        return " · ".join(parts)


class Board:
    """The stages of one command's flow run, fed by span events, rendered by rich.

    Args:
        on_close: called with each stage once it is closed (the printer of a console that is
            no terminal).
    """

    def __init__(self, on_close: Callable[[Stage], None] | None = None) -> None:
        self.stages: list[Stage] = []
        self._on_close = on_close
        self._lock = threading.Lock()
        self._root: str | None = None
        self._stage_of: dict[str, Stage] = {}  # top-level task or (sub)subflow run -> stage
        self._flow_of: dict[str, str] = {}  # task run inside a subflow -> its flow run
        self._units: dict[str, int] = {}  # task run inside a subflow -> what it processes
        self._spinner = Spinner("dots")

    def begin(self, label: str, detail: str = "") -> Stage:
        """Start a stage that is no run (the Prefect API coming up); the flow's start ends it.

        Args:
            label: the stage's name.
            detail: what it is about.
        """
        with self._lock:
            return self._append(Stage(label, detail, running=1))

    def flow_started(self, run_id: str, parent_id: str | None) -> None:
        """A flow run began: the command's flow when it is the first, else a subflow.

        Args:
            run_id: the flow run.
            parent_id: the run whose span encloses it (None for the command's flow).
        """
        with self._lock:
            if self._root is None:
                self._root = run_id
                for stage in self.stages:
                    if stage.ended is None:
                        self._finish(stage, failed=False)
            elif parent_id == self._root:
                self._stage_of[run_id] = self._append(Stage("…", key=("flow", run_id),
                                                            running=1))
            elif parent_id in self._stage_of:  # deeper: counts toward its parent's stage
                self._stage_of[run_id] = self._stage_of[parent_id]

    def task_started(self, run_id: str, flow_id: str, flow_name: str, task_name: str,
                     parameters: dict[str, Any]) -> None:
        """A task run began.

        Args:
            run_id: the task run.
            flow_id: the flow run it belongs to.
            flow_name: that flow's name (names a subflow's stage).
            task_name: the task's name.
            parameters: the task run's parameters.
        """
        with self._lock:
            if flow_id == self._root:
                group = str(parameters[GROUPS[task_name]]) if task_name in GROUPS else ""
                key = (task_name, group)
                stage = next((s for s in reversed(self.stages)
                              if s.key == key and not s.closed), None)
                if stage is None:
                    label = LABELS.get(task_name, task_name)
                    stage = self._append(Stage(f"{label} ({group})" if group else label,
                                               DETAILS.get(task_name, "").format(**parameters),
                                               key))
                stage.running += 1
                stage.ended = None
                if task_name in NAMES:
                    stage.names.append(str(parameters[NAMES[task_name]]))
                self._stage_of[run_id] = stage
            elif flow_id in self._stage_of:
                stage = self._stage_of[flow_id]
                if stage.label == "…":
                    stage.label = LABELS.get(flow_name, flow_name)
                self._flow_of[run_id] = flow_id
                if task_name in UNITS:
                    stage.unit, count = UNITS[task_name]
                    self._units[run_id] = count(parameters["shard"])
                    if stage.units_since is None:
                        stage.units_since = time.monotonic()

    def run_ended(self, run_id: str, state: str, failed: bool) -> None:
        """A flow or task run ended.

        Args:
            run_id: the run.
            state: its final state's name (``Completed``, ``Cached``, ``Failed``...).
            failed: whether it ended in error.
        """
        with self._lock:
            if run_id == self._root:
                self._close_all(failed)
                return
            flow_id = self._flow_of.pop(run_id, None)
            if flow_id is not None:  # inside a subflow: what it processed counts
                owner = self._stage_of.get(flow_id)
                if owner is not None and run_id in self._units:
                    owner.amount += self._units.pop(run_id)
                    owner.units_until = time.monotonic()
                return
            stage = self._stage_of.pop(run_id, None)
            if stage is None or (stage.key[0] == "flow" and stage.key[1] != run_id):
                return  # not ours, or a deeper subflow (its stage ends with its parent)
            stage.running -= 1
            stage.runs += 1
            stage.cached += state == "Cached"
            if failed or stage.running == 0:
                self._finish(stage, failed)

    def fail_running(self) -> None:
        """End every stage still running as failed, and close all (the command failed)."""
        with self._lock:
            self._close_all(failed=True)

    def _append(self, stage: Stage) -> Stage:
        for earlier in self.stages:  # a group of the same task may run beside it: left open
            if earlier.ended is not None and earlier.key[0] != stage.key[0]:
                self._close(earlier)
        self.stages.append(stage)
        return stage

    def _finish(self, stage: Stage, failed: bool) -> None:
        stage.ended = time.monotonic()
        stage.failed = stage.failed or failed

    def _close_all(self, failed: bool) -> None:
        for stage in self.stages:
            if stage.ended is None:
                self._finish(stage, failed)
            self._close(stage)

    def _close(self, stage: Stage) -> None:
        if not stage.closed:
            stage.closed = True
            if self._on_close is not None:
                self._on_close(stage)

    def row(self, stage: Stage) -> _Rows:
        """One stage as a renderable line (what a console that is no terminal prints).

        Args:
            stage: a stage of this board.
        """
        return _Rows(self, [stage])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with self._lock:
            stages = list(self.stages)
        yield _Rows(self, stages)

    def cells(self, stage: Stage) -> tuple[RenderableType, str, str, str]:
        """The mark (spinner, tick or cross), name, detail and seconds of a stage.

        Args:
            stage: a stage of this board.
        """
        mark: RenderableType = self._spinner
        if stage.ended is not None:
            mark = Text("✗", style="bold red") if stage.failed else Text("✓", style="green")
        return mark, stage.label, stage.describe(), f"{stage.seconds:.1f}s"


@dataclass
class _Rows:
    """Stages in fixed-width columns (so that lines printed one by one align)."""

    board: Board
    stages: list[Stage]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=1)
        table.add_column(width=LABEL_WIDTH, no_wrap=True, overflow="ellipsis")
        table.add_column(width=max(options.max_width - LABEL_WIDTH - TIME_WIDTH - 4, 10),
                         no_wrap=True, overflow="ellipsis", style="dim")
        table.add_column(width=TIME_WIDTH, justify="right")
        for stage in self.stages:
            table.add_row(*self.board.cells(stage))
        yield table


class _Relay(SpanProcessor):
    """Hands Prefect's run spans to the board being watched (none: ignores them).

    A failure here is logged, never raised: the display must not fail the run it shows.
    """

    def __init__(self) -> None:
        self.board: Board | None = None
        self._runs: dict[int, str] = {}  # span id -> run id

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        board, attributes = self.board, span.attributes or {}
        run_id = attributes.get("prefect.run.id")
        if board is None or run_id is None:
            return
        try:
            self._started(board, span, str(run_id), attributes.get("prefect.run.type"))
        except Exception:  # noqa: BLE001  (see the class docstring)
            log.warning("progress display: run %s not shown", run_id, exc_info=True)

    def _started(self, board: Board, span: Span, run_id: str, run_type: object) -> None:
        from prefect.context import FlowRunContext, TaskRunContext

        self._runs[span.context.span_id] = run_id
        if run_type == "flow":
            board.flow_started(run_id, None if span.parent is None
                               else self._runs.get(span.parent.span_id))
            return
        context = TaskRunContext.get()  # the task's own: its span starts inside its context
        if context is None or context.task_run.flow_run_id is None:
            return
        flow = FlowRunContext.get()
        board.task_started(run_id, str(context.task_run.flow_run_id),
                           flow.flow.name if flow and flow.flow else "", context.task.name,
                           dict(context.parameters or {}))

    def on_end(self, span: ReadableSpan) -> None:
        board, attributes = self.board, span.attributes or {}
        run_id = attributes.get("prefect.run.id")
        if board is None or run_id is None:
            return
        state = span.events[-1].name if span.events else ""
        try:
            board.run_ended(str(run_id), state, span.status.status_code == StatusCode.ERROR)
        except Exception:  # noqa: BLE001  (see the class docstring)
            log.warning("progress display: run %s not shown", run_id, exc_info=True)


_relay: _Relay | None = None


def _installed_relay() -> _Relay:
    """The process's relay, added once to the global tracer provider (set when unset)."""
    global _relay
    if _relay is None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):  # the API's placeholder: none set yet
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        _relay = _Relay()
        provider.add_span_processor(_relay)
    return _relay


@contextmanager
def watching(board: Board) -> Iterator[Board]:
    """Feed ``board`` with the spans of the flow and task runs started in the block.

    Args:
        board: the board to feed.
    """
    relay = _installed_relay()
    relay.board = board
    try:
        yield board
    finally:
        relay.board = None


@contextmanager
def shown(board: Board, console: Console) -> Iterator[Board]:
    """Show ``board`` on ``console`` while the block runs, redrawn in place on a terminal.

    Elsewhere the board's ``on_close`` prints each stage once, when it is closed.

    Args:
        board: the board.
        console: where it is shown (stderr).
    """
    if not console.is_terminal:
        yield board
        return
    with Live(board, console=console, refresh_per_second=8, redirect_stdout=False,
              redirect_stderr=False):
        yield board
