"""recsys_core stays free of orchestration and validation frameworks, and its layers point one
way (parsed, not imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "recsys_core"
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
