"""recsys_core stays free of orchestration and validation frameworks, and its layers point one
way (parsed, not imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "recsys_core"
PRODUCT = ("recsys_core", "data_checks", "tasks", "flows", "bench")
RUNSTORE = "recsys_core/runstore.py"
RUN_FILES = ("meta.json", "users.json", "items.parquet", "embeddings", "sources", "ranked",
             "train.parquet", "test.parquet", "fit.parquet", "valid.parquet")
"""Names in a run folder (``model`` too, but temporary folders use that name as well)."""
FORBIDDEN = ("prefect", "great_expectations")
MLFLOW_ALLOWED = ("recsys_core/model/", "recsys_core/lifecycle/")
LIFECYCLE = "recsys_core.lifecycle"


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import, at any depth, and of
    ``importlib.import_module("x")`` / ``__import__("x")`` with a literal name."""
    return [(line, module.split(".")[0]) for line, module in imported_names(source)]


def imported_names(source: str) -> list[tuple[int, str]]:
    """(line, full dotted name) of the same imports; ``from a import b`` gives ``a.b``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def violations(source: str, relpath: str) -> list[str]:
    """Layering violations of one module at ``relpath`` (posix, relative to the repo root)."""
    out = []
    for line, module in imported_modules(source):
        if module in FORBIDDEN:
            out.append(f"{relpath}:{line} imports {module}")
        elif module == "mlflow" and not relpath.startswith(MLFLOW_ALLOWED):
            out.append(f"{relpath}:{line} imports mlflow outside model/ and lifecycle/")
    if relpath.startswith("recsys_core/model/"):
        out += [f"{relpath}:{line} imports {name}: the artefact must not know its lifecycle"
                for line, name in imported_names(source)
                if name == LIFECYCLE or name.startswith(f"{LIFECYCLE}.")]
    return out


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_has_modules() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in core_modules()}
    assert {"recsys_core/scoring.py", "recsys_core/lifecycle/registry.py",
            "recsys_core/model/pyfunc.py"} <= names


def test_recsys_core_respects_layering() -> None:
    problems = []
    for path in core_modules():
        problems += violations(path.read_text(encoding="utf-8"),
                               path.relative_to(ROOT).as_posix())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("source", "relpath", "bad"), [
    ("import prefect\n", "recsys_core/x.py", True),
    ("from prefect.tasks import task\n", "recsys_core/cf/x.py", True),
    ("def f():\n    import great_expectations as gx\n", "recsys_core/data/x.py", True),
    ("try:\n    from great_expectations import core\nexcept ImportError:\n    pass\n",
     "recsys_core/x.py", True),
    ("import importlib\nimportlib.import_module('prefect.flows')\n", "recsys_core/x.py", True),
    ("import mlflow\n", "recsys_core/evaluation/report.py", True),
    ("from mlflow.pyfunc import PythonModel\n", "recsys_core/fusion/x.py", True),
    ("import mlflow\n", "recsys_core/model/pyfunc.py", False),
    ("import mlflow.pyfunc\n", "recsys_core/lifecycle/registry.py", False),
    ("import mlflow\n", "recsys_core/registry.py", True),
    ("from recsys_core.lifecycle import registry\n", "recsys_core/model/hybrid.py", True),
    ("from recsys_core.lifecycle.batch import x\n", "recsys_core/model/pyfunc.py", True),
    ("import recsys_core.lifecycle\n", "recsys_core/model/x.py", True),
    ("from recsys_core.model.hybrid import x\n", "recsys_core/lifecycle/batch.py", False),
    ("from recsys_core.lifecycles import x\n", "recsys_core/model/x.py", False),
    ("import prefect\n", "recsys_core/model/pyfunc.py", True),
    ("import prefect_aws_like\nimport mlflowish\n", "recsys_core/x.py", False),
    ("from . import prefect\nfrom .mlflow import x\n", "recsys_core/x.py", False),
    ("x = 'import prefect'\n", "recsys_core/x.py", False),
])
def test_checker_catches_what_it_should(source: str, relpath: str, bad: bool) -> None:
    assert bool(violations(source, relpath)) is bad


def run_folder_joins(source: str, relpath: str) -> list[str]:
    """Places that build a run-folder path by hand: ``x.folder / ...``, ``x.folder.joinpath``,
    or a join with a name from the run folder's layout (only ``RunStore`` knows it)."""
    def named(node: ast.expr) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str) and (
            node.value.split("/")[0] in RUN_FILES)

    def folder(node: ast.expr) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "folder"

    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            bad = folder(node.left) or named(node.left) or named(node.right)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            bad = node.func.attr == "joinpath" and (
                folder(node.func.value) or any(named(arg) for arg in node.args))
        else:
            continue
        if bad:
            out.append(f"{relpath}:{node.lineno} joins run-folder path parts: ask RunStore")
    return out


def test_only_runstore_knows_the_run_folder_layout() -> None:
    problems = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            relpath = path.relative_to(ROOT).as_posix()
            if relpath != RUNSTORE:
                problems += run_folder_joins(path.read_text(encoding="utf-8"), relpath)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("source", "bad"), [
    ("store.folder / 'model'\n", True),
    ("RunStore(run).folder.joinpath('test.parquet').exists()\n", True),
    ("(run / 'test.parquet').exists()\n", True),
    ("Path(run).joinpath('sources', 'x.pkl')\n", True),
    ("root / 'ranked/abc'\n", True),
    ("store.model_dir\n", False),
    ("store.has_part('test')\n", False),
    ("Path(tmp) / 'model'\n", False),
    ("settings.home / 'recommendations'\n", False),
    ("x = 'test.parquet'\n", False),
])
def test_run_folder_check_catches_what_it_should(source: str, bad: bool) -> None:
    assert bool(run_folder_joins(source, "tasks/x.py")) is bad
