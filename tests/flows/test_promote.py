"""The promotion flow and `recsys promote`, under the session's Prefect test harness."""

from __future__ import annotations

from typer.testing import CliRunner

from flows.app.cli import app
from flows.promote import promote_flow
from recsys_core.lifecycle import registry
from tests.lifecycle.builders import unique_settings


def champion(settings) -> str:
    found = registry.alias_version(registry.client(settings), settings.model_name,
                                   registry.CHAMPION)
    return str(found.version)


def test_promote_flow_cli_and_rollback(prefect_harness, promotion_run, promotion_models,
                                       monkeypatch) -> None:
    strong, weak = promotion_models
    settings = unique_settings()
    monkeypatch.setenv("RECSYS_MODEL_NAME", settings.model_name)
    cli = CliRunner()

    promotion_run.register(weak, settings)
    result = promote_flow()
    assert result.promoted is True and result.version == "1"
    assert result.champion_ndcg is None and result.challenger_ndcg > 0

    promotion_run.register(strong, settings)
    out = cli.invoke(app, ["promote", "--margin", "0.01"])
    assert out.exit_code == 0, out.output
    assert "version 2 beats champion 1 on ndcg@5" in out.output
    assert champion(settings) == "2"

    promotion_run.register(weak, settings)
    out = cli.invoke(app, ["promote"])
    assert out.exit_code == 0 and "version 3 does not beat champion 2" in out.output
    assert champion(settings) == "2"

    out = cli.invoke(app, ["promote", "--rollback"])
    assert out.exit_code == 0
    assert "champion rolled back from version 2 to 1" in out.output
    assert champion(settings) == "1"

    out = cli.invoke(app, ["promote", "--rollback"])
    assert out.exit_code == 2
    assert out.output.strip().splitlines()[-1].startswith("error:")
    assert "no previous champion" in out.output


def test_promote_without_a_model_is_one_clear_error(prefect_harness, monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_MODEL_NAME", unique_settings().model_name)
    out = CliRunner().invoke(app, ["promote"])
    assert out.exit_code == 2 and "no challenger" in out.output


def test_recommend_cli_answers_from_the_champion(promotion_run, promotion_models,
                                                 monkeypatch) -> None:
    strong, _ = promotion_models
    settings = unique_settings()
    monkeypatch.setenv("RECSYS_MODEL_NAME", settings.model_name)
    cli = CliRunner()
    out = cli.invoke(app, ["recommend", "u1"])
    assert out.exit_code == 2 and "no champion model yet" in out.output
    promotion_run.register(strong, settings)
    registry.ensure_champion(settings)
    out = cli.invoke(app, ["recommend", "u1", "--k", "3"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    expected = strong.model.recommend("u1", 3)
    assert [line.split()[1] for line in lines] == [r.item_id for r in expected]
    assert "als=" in lines[0] and "fallback" not in out.output
    out = cli.invoke(app, ["recommend", "--recent", "i1", "--recent", "i2", "--k", "2"])
    assert out.exit_code == 0 and len(out.output.strip().splitlines()) == 2
    out = cli.invoke(app, ["recommend", "stranger", "--k", "2"])
    assert out.output.count("(popular fallback)") == 2
    out = cli.invoke(app, ["recommend", "--query", "camping tent", "--k", "2"])
    assert out.exit_code == 0 and "query=" in out.output
    out = cli.invoke(app, ["recommend"])
    assert out.exit_code == 2 and "give a USER_ID" in out.output
    out = cli.invoke(app, ["recommend", "u1", "--query", "x"])
    assert out.exit_code == 2 and "cannot be combined" in out.output
