"""The ``recsys`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from flows.app.env import apply_defaults

apply_defaults()  # before Prefect or MLflow is imported

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Hybrid recommender: train, ingest, promote, recommend, serve, deploy.")


@app.callback()
def _root() -> None:
    """Hybrid recommender: train, ingest, promote, recommend, serve, deploy."""


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def train(
    data: Annotated[str, typer.Option(help="Dataset directory, or 'synthetic'.")] = "synthetic",
    protocol: Annotated[str, typer.Option(
        help="stratified | temporal | leave_last | cold_items")] = "stratified",
    k: Annotated[int, typer.Option(min=1, help="Metric cut-off.")] = 10,
    encoder: Annotated[str | None, typer.Option(
        help="Hugging Face encoder name or local path.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    register: Annotated[bool, typer.Option(
        "--register/--no-register", help="Register the model in MLflow.")] = True,
    trials: Annotated[int | None, typer.Option(help="Fusion tuning trials.")] = None,
) -> None:
    """Run the whole training flow and print the metrics table."""
    from flows.train import train_flow
    from recsys_core.data.errors import DataError
    from recsys_core.evaluation.report import render_text

    try:
        result = train_flow(data=data, protocol=protocol, k=k, encoder=encoder,
                            register_model=register, trials=trials,
                            report_path=str(report) if report else None)
    except (DataError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(render_text(result))


@app.command()
def ingest(
    data: Annotated[str, typer.Option(help="Dataset directory, or 'synthetic'.")] = "synthetic",
    append: Annotated[bool, typer.Option(
        "--append", help="Apply the rows to the latest snapshot (new events reach the served "
                         "model without retraining).")] = False,
) -> None:
    """Validate a dataset and load it into the warehouse; print rows per table."""
    from flows.ingest import ingest_flow
    from recsys_core.data.errors import DataError

    try:
        result = ingest_flow(data=data, append=append)
    except (DataError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(f"snapshot {result.snapshot_id} of {result.dataset}")
    typer.echo(f"{'table':<14}{'read':>10}{'valid':>10}{'quarantined':>13}")
    for table, counts in result.validation["tables"].items():
        typer.echo(f"{table:<14}{counts['rows_read']:>10}{counts['rows_valid']:>10}"
                   f"{counts['rows_quarantined']:>13}")
    typer.echo(f"data docs: {result.data_docs}")


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
) -> None:
    """Promote the challenger if it beats the champion on the same data (or roll back)."""
    from flows.promote import Rollback, promote_flow

    try:
        result = promote_flow(margin=margin, k=k, rollback_champion=rollback)
    except LookupError as exc:
        _fail(str(exc))
    if isinstance(result, Rollback):
        typer.echo(f"champion rolled back from version {result.rolled_back_from} "
                   f"to {result.champion}")
    else:
        typer.echo(result.reason)


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


def main() -> None:
    """Console entry point."""
    app()
