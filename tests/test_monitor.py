"""The usage monitor: tokens, cost from the price table, budget, counters, persistence."""
from __future__ import annotations

import pytest

from copilot.config import load_config
from copilot.monitor import Monitor


def cfg_with(tmp_path, **over):
    return load_config(env={}, overrides={"data_dir": str(tmp_path), **over})


def test_tokens_and_cost_per_model_and_assistant(tmp_path):
    m = Monitor(cfg_with(tmp_path, prices={"my-model": {"input": 2.0, "output": 10.0}}))
    m.record("my-model", "Coding", 1_000_000, 100_000)
    m.record("my-model", "Tutoring", 500_000, 0, estimated=True)
    m.record("gpt-4o-mini", "Coding", 1_000_000, 0)
    f = m.figures()
    assert f["models"]["my-model"]["cost_usd"] == pytest.approx(2.0 + 1.0 + 1.0)
    assert f["assistants"]["Coding"]["input_tokens"] == 2_000_000
    assert f["assistants"]["Tutoring"]["estimated_calls"] == 1
    assert f["cost_usd"] == pytest.approx(4.0 + 0.15)  # the built-in table prices gpt-4o-mini
    assert f["totals"] == {"calls": 3, "input_tokens": 2_500_000, "output_tokens": 100_000}


def test_config_prices_override_the_defaults_and_unpriced_models_are_listed(tmp_path):
    m = Monitor(cfg_with(tmp_path, prices={"gpt-4o-mini": {"input": 1.0, "output": 1.0}}))
    m.record("gpt-4o-mini", "Coding", 1_000_000, 0)
    m.record("local-llama", "Coding", 1_000, 1_000)
    f = m.figures()
    assert f["cost_usd"] == pytest.approx(1.0)
    assert f["unpriced_models"] == ["local-llama"]


def test_budget_warns_at_80_percent_and_refuses_at_100(tmp_path):
    m = Monitor(cfg_with(tmp_path, budget={"limit_usd": 1.0}, prices={"p": {"input": 1.0, "output": 0.0}}))
    assert m.budget_state() == "ok" and not m.over_budget()
    m.record("p", "Coding", 790_000, 0)
    assert m.budget_state() == "ok"
    m.record("p", "Coding", 20_000, 0)
    assert m.budget_state() == "warn" and "81%" in m.budget_message()
    m.record("p", "Coding", 200_000, 0)
    assert m.over_budget() and "spent" in m.budget_message()
    assert Monitor(cfg_with(tmp_path)).budget_state() == "none"  # no limit configured


def test_figures_persist_counters_count_and_reset(tmp_path):
    cfg = cfg_with(tmp_path)
    m = Monitor(cfg)
    m.record("gpt-4o", "Guide", 10, 5)
    m.count("retrieval_calls")
    m.count("retrieval_calls", 2)
    m.flush()  # counters are written at most once a second, and at exit
    again = Monitor(cfg).figures()
    assert again["counters"]["retrieval_calls"] == 3 and again["models"]["gpt-4o"]["output_tokens"] == 5
    Monitor(cfg).reset()
    assert Monitor(cfg).figures()["totals"]["calls"] == 0


def test_a_damaged_usage_file_starts_over(tmp_path):
    cfg = cfg_with(tmp_path)
    (tmp_path / "usage.json").write_text("{not json", encoding="utf-8")
    m = Monitor(cfg)
    m.record("gpt-4o", "Guide", 1, 1)
    assert Monitor(cfg).figures()["totals"]["calls"] == 1


def test_spending_reaches_other_processes_at_once_with_a_budget_and_within_seconds_without(tmp_path):
    import time

    budgeted = Monitor(cfg_with(tmp_path / "b", budget={"limit_usd": 10.0}))
    budgeted.record("gpt-4o-mini", "Coding", 1_000, 0)
    budgeted.record("gpt-4o-mini", "Coding", 1_000, 0)
    assert Monitor(cfg_with(tmp_path / "b")).figures()["totals"]["calls"] == 2  # no flush: saved at once

    free = Monitor(cfg_with(tmp_path / "f"))
    free.record("gpt-4o-mini", "Coding", 1_000, 0)  # the first save is immediate
    free.record("gpt-4o-mini", "Coding", 1_000, 0)  # the next within a second, with no other call
    deadline = time.monotonic() + 30
    while Monitor(cfg_with(tmp_path / "f")).figures()["totals"]["calls"] < 2:
        assert time.monotonic() < deadline, "the second record never reached usage.json"
        time.sleep(0.1)
    assert free.figures()["totals"]["calls"] == 2  # nothing counted twice by the merge
