"""The ``recsys`` command line.

Commands that run a flow check their inputs first (``checks``: a bad input is one line on
stderr and exit code 2, before Prefect starts), then run it in a console ``session``: a
progress board, the logs in a file under RECSYS_HOME (``--verbose``: on the console), and an
error inside the flow as one line too.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from flows.app.env import apply_defaults

apply_defaults()  # before Prefect or MLflow is imported

from flows.app import checks  # noqa: E402  (after the environment defaults)
from flows.app.api import local_api_starting  # noqa: E402
from flows.app.console import session  # noqa: E402

T = TypeVar("T")


class _Commands(TyperGroup):
    """The command group, whose usage errors are one line.

    An unknown option or a bad value ends the command with one line on stderr and exit code 2,
    like the commands' own errors (click's default is a framed usage text).
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except typer.TyperException as exc:  # click's exceptions, as typer vendors them
            if type(exc).__name__ != "NoArgsIsHelpError":  # (`recsys` alone: help was shown)
                command = getattr(getattr(exc, "ctx", None), "command_path", "recsys")
                typer.secho(f"error: {exc.format_message()} (see `{command} --help`)",
                            fg=typer.colors.RED, err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            typer.secho("error: aborted", fg=typer.colors.RED, err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True,
                  help="Hybrid recommender: train, ingest, batch, promote, forget, recommend, "
                       "serve, deploy, status.")

Verbose = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Stream Prefect's and the core's logs (and tracebacks) to the "
                            "console instead of the progress display.")]


@app.callback()
def _root() -> None:
    """Hybrid recommender: train, ingest, batch, promote, forget, recommend, serve, status."""


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _check(step: Callable[[], T]) -> T:
    """Run a pre-flight check; its result, or the command ends (one line, exit code 2)."""
    try:
        return step()
    except checks.BadInput as exc:
        _fail(str(exc))


@app.command()
def train(
    data: Annotated[str, typer.Option(help="Dataset directory, or 'synthetic'.")] = "synthetic",
    protocol: Annotated[str, typer.Option(
        help="stratified | temporal | leave_last | cold_items | given (the data's own split)")
    ] = "stratified",
    k: Annotated[list[str] | None, typer.Option(
        metavar="K", show_default=False,
        help="Metric cut-off; repeat it or list several (--k 10 --k 20, --k 10,20): the first "
        "drives tuning and promotion (default 10).")] = None,
    encoder: Annotated[str | None, typer.Option(
        help="Hugging Face encoder name or local path.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    register: Annotated[bool, typer.Option(
        "--register/--no-register", help="Register the model in MLflow.")] = True,
    trials: Annotated[int | None, typer.Option(help="Fusion tuning trials.")] = None,
    verbose: Verbose = False,
) -> None:
    """Run the whole training flow and print the metrics table."""
    from recsys_core.config import get_settings

    _check(lambda: checks.dataset(data))
    ks = _check(lambda: checks.training(protocol, k, trials))
    _check(lambda: checks.protocol_data(data, protocol))
    _check(lambda: checks.encoder(encoder or get_settings().encoder))
    with session("train", verbose) as run:
        with local_api_starting():
            from flows.train import train_flow

        result = train_flow(data=data, protocol=protocol, k=ks, encoder=encoder,
                            register_model=register, trials=trials,
                            report_path=str(report) if report else None)
    from recsys_core.evaluation.report import render_text

    typer.echo(render_text(result))
    links, uri = result.links, get_settings().tracking_uri
    mlflow_run = links.mlflow_run if links else None
    if mlflow_run and uri.startswith("sqlite:"):
        mlflow_run += f"  (UI: mlflow ui --backend-store-uri {uri})"
    run.where(report=report, mlflow_run=mlflow_run,
              data_docs=(links.data_docs if links else None)
              or "not rendered by train (`recsys ingest` renders them)")


@app.command()
def ingest(
    data: Annotated[str, typer.Option(help="Dataset directory, or 'synthetic'.")] = "synthetic",
    append: Annotated[bool, typer.Option(
        "--append", help="Apply the rows to the latest snapshot (new events reach the served "
                         "model without retraining).")] = False,
    verbose: Verbose = False,
) -> None:
    """Validate a dataset and load it into the warehouse; print rows per table."""
    _check(lambda: checks.dataset(data))
    with session("ingest", verbose) as run:
        with local_api_starting():
            from flows.ingest import ingest_flow

        result = ingest_flow(data=data, append=append)
    typer.echo(f"snapshot {result.snapshot_id} of {result.dataset}")
    typer.echo(f"{'table':<14}{'read':>10}{'valid':>10}{'quarantined':>13}")
    for table, counts in result.validation["tables"].items():
        typer.echo(f"{table:<14}{counts['rows_read']:>10}{counts['rows_valid']:>10}"
                   f"{counts['rows_quarantined']:>13}")
    run.where(data_docs=result.data_docs)


@app.command()
def batch(
    alias: Annotated[str, typer.Option(help="The version to score with: an alias or a number.")
                     ] = "champion",
    k: Annotated[int, typer.Option(min=1, max=1000, help="Items per user.")] = 10,
    verbose: Verbose = False,
) -> None:
    """Write every user's top-k from a registered version to Parquet and the warehouse."""
    _check(lambda: checks.model_version(alias))
    with session("batch", verbose) as run:
        with local_api_starting():
            from flows.batch import batch_flow

        result = batch_flow(alias=alias, k=k)
    typer.echo(f"version {result.model_version}: top-{k} of {result.users:,} users, "
               f"{result.rows_loaded:,} rows")
    run.where(parquet=result.parquet, table=f"{result.table} in {result.warehouse}")


@app.command()
def recommend(
    user_id: Annotated[str | None, typer.Argument(help="The user to recommend for.")] = None,
    k: Annotated[int, typer.Option(min=1, max=1000, help="How many items.")] = 10,
    recent: Annotated[list[str] | None, typer.Option(
        "--recent", help="An item the user touched lately (repeat it): fold-in.")] = None,
    query: Annotated[str | None, typer.Option(help="Free text matched to item text.")] = None,
) -> None:
    """Recommend from the champion model, in process (user, recent items or text)."""
    from recsys_core.config import get_settings
    from recsys_core.lifecycle.served import open_served

    if user_id is None and not recent and query is None:
        _fail("give a USER_ID, --recent ITEM or --query TEXT")
    found = open_served(get_settings(), "champion")
    if found is None:
        _fail("no champion model yet: run `recsys train` first")
    try:
        recs = found[1].recommend(user_id, k, recent_items=recent or None, query=query)
    except ValueError as exc:
        _fail(str(exc))
    for rank, rec in enumerate(recs, start=1):
        flag = " (popular fallback)" if rec.fallback else ""
        parts = " ".join(f"{name}={value:+.3f}" for name, value in rec.contributions.items())
        typer.echo(f"{rank:>3}. {rec.item_id:<12} {rec.score:8.4f}  {rec.title}{flag}"
                   + (f"  [{parts}]" if parts else ""))


@app.command()
def promote(
    margin: Annotated[float, typer.Option(
        min=0.0, help="Relative NDCG gain the challenger needs (0.01 = 1%).")] = 0.0,
    k: Annotated[int | None, typer.Option(
        min=1, help="Metric cut-off (default: the challenger's).")] = None,
    rollback: Annotated[bool, typer.Option(
        "--rollback", help="Point champion back at the previous champion.")] = False,
    verbose: Verbose = False,
) -> None:
    """Promote the challenger if it beats the champion on the same data (or roll back)."""
    _check(lambda: checks.model_version("champion" if rollback else "challenger"))
    with session("promote", verbose) as run:
        with local_api_starting():
            from flows.promote import Rollback, promote_flow

        result = promote_flow(margin=margin, k=k, rollback_champion=rollback)
    if isinstance(result, Rollback):
        typer.echo(f"champion rolled back from version {result.rolled_back_from} "
                   f"to {result.champion}")
    else:
        typer.echo(result.reason)
    run.where()


@app.command()
def forget(
    user_ids: Annotated[list[str], typer.Argument(help="The users to erase.")],
    reason: Annotated[str, typer.Option(
        help="Why (e.g. a ticket number); kept in the audit, so no personal data.")] = "",
    verbose: Verbose = False,
) -> None:
    """Erase users everywhere: warehouse, caches, run folders, outputs, the served model."""
    from recsys_core.config import get_settings
    from recsys_core.lifecycle.erasure import write_request

    with session("forget", verbose) as run:
        with local_api_starting():
            from flows.forget import forget_flow

        # the ids travel in a request file, so they never become flow-run parameters
        result = forget_flow(request=str(write_request(get_settings(), user_ids, reason)),
                             reason=reason)
    typer.echo(f"erasure {result.audit_id}: {result.users} users")
    for place, count in result.removed.items():
        typer.echo(f"  {place:<22}{count:>10}")
    if result.champion is not None:
        typer.echo(f"champion is now version {result.champion}: restart `recsys serve`")
    run.where()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 5000,
    workers: Annotated[int, typer.Option(min=1, help="Server worker processes.")] = 1,
) -> None:
    """Serve the champion over HTTP (MLflow: GET /ping, POST /invocations)."""
    from flows.app.serve import serve as run_server

    try:
        code = run_server(host, port, workers)
    except LookupError as exc:
        _fail(str(exc))
    raise typer.Exit(code)


@app.command()
def deploy(
    serve: Annotated[bool, typer.Option(
        "--serve", help="Serve the deployments from this process (no work pool, no worker).")
    ] = False,
    prefect_file: Annotated[Path | None, typer.Option(
        help="The deployments' file (default: the project's prefect.yaml).")] = None,
) -> None:
    """Apply prefect.yaml's deployments (creating the work pool), or serve them with --serve."""
    from flows.app import deploy as deployments

    prefect_file = prefect_file or deployments.PREFECT_FILE
    if serve:
        deployments.serve(prefect_file)
        return
    try:
        names = deployments.deploy(prefect_file)
    except RuntimeError as exc:
        _fail(str(exc))
    pools = sorted({item["work_pool"]["name"] for item in deployments.load_spec(prefect_file)})
    for name in names:
        typer.echo(f"deployed {name}")
    typer.echo("start a worker: " + " ; ".join(f"prefect worker start --pool {pool}"
                                                for pool in pools))


@app.command()
def status() -> None:
    """Show what RECSYS_HOME holds: snapshots, training runs, versions; where the UIs are."""
    from rich.console import Console

    from flows.app.status import show
    from recsys_core.config import get_settings

    show(get_settings(), Console())


def main() -> NoReturn:
    """Console entry point: run the command, then leave without Python's teardown.

    After a training run the interpreter's own teardown of the loaded libraries (torch,
    transformers, MLflow, Prefect) takes another 3-4.5 s on 2 cores, and none of it is work
    a command needs: every file and the warehouse are closed explicitly. So, once the
    command has returned, this does what the interpreter's exit does first (join the
    non-daemon threads, run the atexit handlers, such as Prefect's log flush and its
    server's stop, and flush the standard streams) and then ends the process.
    """
    try:
        app()
        code: object = 0
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):  # sys.exit("message"): printed, status 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx calls first
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0)
