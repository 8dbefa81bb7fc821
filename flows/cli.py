"""The ``recsys`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.env import apply_defaults

apply_defaults()  # before Prefect or MLflow is imported

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Hybrid recommender: train, ingest, promote, recommend, serve.")


@app.callback()
def _root() -> None:
    """Hybrid recommender: train, ingest, promote, recommend, serve."""


def _fail(message: str) -> None:
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
    from recsys_core.data.errors import DataError
    from recsys_core.evaluation.report import render_text
    from flows.train import train_flow

    try:
        result = train_flow(data=data, protocol=protocol, k=k, encoder=encoder,
                            register_model=register, trials=trials,
                            report_path=str(report) if report else None)
    except (DataError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(render_text(result))


def main() -> None:
    """Console entry point."""
    app()
