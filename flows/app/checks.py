"""Pre-flight checks: what the CLI can tell about its inputs before Prefect starts.

Each check uses the code the flow itself runs (the layouts' readers on a preview of the files,
the training config's validators, the encoder's resolution), so it accepts what the flow
accepts. A failed check raises ``BadInput`` with one line naming the file, column or option;
the CLI prints it and exits with code 2, seconds after the command started instead of after a
temporary Prefect server has come up.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from recsys_core.config import first_error


class BadInput(ValueError):
    """An input the command cannot run with; the message is one line."""


def dataset(data: str) -> str:
    """Check ``--data``; return what will be read (``synthetic`` or the layout's name).

    Args:
        data: ``synthetic``, ``synthetic:N`` or a dataset directory.

    Raises:
        BadInput: not a directory, unknown layout, an unreadable file or a missing column.
    """
    from recsys_core.data.loaders import check_dataset

    try:
        return check_dataset(data)
    except ValueError as exc:  # DataError included
        raise BadInput(str(exc)) from exc


def training(protocol: str, k: Sequence[str] | None, trials: int | None) -> list[int]:
    """Check the training options the way the flow reads them; return the cut-offs.

    ``--k`` is parsed by ``metrics.cutoffs``; protocol, the first cut-off and trials go
    through the validators of the config the flow builds.

    Args:
        protocol: ``--protocol``.
        k: ``--k`` as typed (None: 10).
        trials: ``--trials`` (None: the settings' default).

    Raises:
        BadInput: the first invalid option, as ``--option: reason``.
    """
    from recsys_core.evaluation.metrics import cutoffs
    from recsys_core.training import TrainingConfig

    try:
        ks = list(cutoffs(k or [10]))
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    options = {"protocol": protocol, "k": ks[0]} | ({} if trials is None else {"trials": trials})
    try:
        TrainingConfig(**options)
    except ValidationError as exc:
        raise BadInput(one_line(exc)) from exc
    return ks


def protocol_data(data: str, protocol: str) -> None:
    """Refuse a protocol that orders interactions by time on data that has no times.

    Args:
        data: ``--data``, already checked by ``dataset``.
        protocol: ``--protocol``, already checked by ``training``.

    Raises:
        BadInput: ``leave_last`` or ``temporal`` on data without interaction times (such
            as Last.fm HetRec).
    """
    from recsys_core.data.loaders import has_times
    from recsys_core.evaluation.splits import TIMED_PROTOCOLS

    if protocol in TIMED_PROTOCOLS and not has_times(data):
        raise BadInput(f"--protocol {protocol}: {data} has no interaction times to order "
                       "by (use stratified or cold_items)")


def encoder(name_or_path: str) -> None:
    """Check that an encoder resolves to model files here (packaged, local or cached).

    Args:
        name_or_path: ``--encoder``, or the settings' default.

    Raises:
        BadInput: no such folder, a folder without a model, or an unknown Hub name.
    """
    from recsys_core.embed.source import resolve_model_path

    try:
        resolve_model_path(name_or_path)
    except FileNotFoundError as exc:
        raise BadInput(str(exc)) from exc


def model_version(alias: str) -> None:
    """Check that an alias or version number names a registered version (reading only).

    Args:
        alias: ``--alias``: ``champion``, ``challenger`` or a version number.

    Raises:
        BadInput: no such version.
    """
    from recsys_core.config import get_settings

    settings = get_settings()
    if settings.has_tracking_store:  # (none: no need to import MLflow to know)
        from recsys_core.lifecycle.history import resolve

        if resolve(settings, alias) is not None:
            return
    which = f"version {alias}" if alias.isdigit() else alias
    raise BadInput(f"model {settings.model_name!r} has no {which}: run `recsys train` first")


def one_line(exc: BaseException) -> str:
    """An exception as one line: a validation error's first error as ``--field: reason``.

    Args:
        exc: any exception.
    """
    if isinstance(exc, ValidationError):
        field, reason = first_error(exc)
        return f"--{field}: {reason}" if field else reason
    text = " ".join(str(exc).split())
    if text and isinstance(exc, ValueError | LookupError | OSError):
        return text  # the project's own errors (DataError, LookupError) read as sentences
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
