"""The monitor: tokens per model and per assistant, cost, a budget, and custom counters.

Token figures come from the API's usage fields, or are counted locally when a server gives
none (flagged as estimated). Cost uses a price table (USD per million tokens) that the
`[prices]` config table extends or overrides:

```toml
[prices."qwen-plus"]
input = 0.4
output = 1.2
```
With `[budget] limit_usd` set, a warning comes at 80% and model calls are refused at 100%;
offline answers (retrieved passages) keep working. Figures persist in `usage.json` in the
data dir, so they survive restarts; `devcopilot usage --reset` starts over.
"""
from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from copilot.config import Config

log = logging.getLogger("devcopilot.monitor")

# USD per million tokens; a starting point the config's [prices] table overrides.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
    "gpt-4.1": {"input": 2.00, "output": 8.00},
    "qwen-turbo": {"input": 0.05, "output": 0.20},
    "qwen-plus": {"input": 0.40, "output": 1.20},
    "qwen-max": {"input": 1.60, "output": 6.40},
}


def _empty() -> dict[str, Any]:
    return {"since": time.time(), "models": {}, "assistants": {}, "counters": {}, "cost_usd": 0.0, "days": {}}


class Monitor:
    def __init__(self, cfg: Config):
        self.path: Path = cfg.data_dir / "usage.json"
        self.prices = {**DEFAULT_PRICES, **{k: dict(v) for k, v in (cfg.prices or {}).items()
                                            if isinstance(v, dict)}}
        self.limit = float(cfg.budget.limit_usd or 0.0)
        self.warn_ratio = float(cfg.budget.warn_ratio)
        self._lock = threading.Lock()
        self._dirty, self._saved_at = False, 0.0
        self.data = self._load()
        self._delta = _zero()  # counted here since the last save; merged into the file by _save
        atexit.register(self.flush)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and {"models", "assistants", "counters"} <= set(data):
                data.setdefault("days", {})  # figures saved before days were kept
                return data
        except (OSError, ValueError):
            pass
        return _empty()  # missing or damaged: start over rather than fail the chat

    def _save(self) -> None:
        """Merge this process's changes into the file and write it atomically. Several processes
        (`serve --workers N`) share the file: under a lock, each adds what it counted since its last
        save to what the file holds now. A failing disk keeps the figures in memory rather than break a chat."""
        tmp = self.path.with_name(f".usage.{os.getpid()}.{threading.get_ident()}.tmp")
        self._dirty, self._saved_at = False, time.monotonic()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(".usage.lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                merged = _added(self._load(), self._delta)
                tmp.write_text(json.dumps(merged, indent=1), encoding="utf-8")
                os.replace(tmp, self.path)
            self.data, self._delta = merged, _zero()
        except OSError:
            log.warning("could not write %s", self.path, exc_info=True)

    def price(self, model: str) -> dict[str, float] | None:
        return self.prices.get(model) or self.prices.get(model.split("/")[-1])

    def record(self, model: str, assistant: str, input_tokens: int, output_tokens: int,
               estimated: bool = False) -> None:
        p = self.price(model)
        cost = (input_tokens * p.get("input", 0.0) + output_tokens * p.get("output", 0.0)) / 1e6 if p else 0.0
        change = _zero()
        for table, key in (("models", model), ("assistants", assistant)):
            change[table][key] = {"calls": 1, "input_tokens": int(input_tokens), "output_tokens": int(output_tokens),
                                  "estimated_calls": int(estimated), "cost_usd": cost}
        change["cost_usd"] = cost
        # Per day (local time) and assistant, for the Usage tab's charts.
        change["days"][time.strftime("%Y-%m-%d")] = {assistant: {
            "calls": 1, "input_tokens": int(input_tokens), "output_tokens": int(output_tokens), "cost_usd": cost}}
        with self._lock:
            self.data, self._delta = _added(self.data, change), _added(self._delta, change)
            self._save()

    def count(self, name: str, n: int = 1) -> None:
        """A custom counter (retrieval calls, offline answers, retries...).

        Counters are written at most once a second (and at exit): they sit on the path to the first token.
        Tokens and cost are written at once, since the budget depends on them.
        """
        with self._lock:
            for figures in (self.data, self._delta):
                figures["counters"][name] = figures["counters"].get(name, 0) + n
            self._dirty = True
            if time.monotonic() - self._saved_at >= 1.0:
                self._save()

    def flush(self) -> None:
        with self._lock:
            if self._dirty:
                self._save()

    # -- budget ----------------------------------------------------------------------------------
    def spent(self) -> float:
        return float(self.data["cost_usd"])

    def budget_state(self) -> str:
        """"none" (no budget), "ok", "warn" (>= 80%) or "over" (>= 100%)."""
        if self.limit <= 0:
            return "none"
        ratio = self.spent() / self.limit
        return "over" if ratio >= 1.0 else "warn" if ratio >= self.warn_ratio else "ok"

    def over_budget(self) -> bool:
        return self.budget_state() == "over"

    def budget_message(self) -> str:
        state = self.budget_state()
        if state == "over":
            return (f"The usage budget of ${self.limit:.2f} is spent (${self.spent():.4f}); model calls are paused "
                    "and answers come from the retrieved passages. Raise [budget] limit_usd or run "
                    "`devcopilot usage --reset`.")
        if state == "warn":
            return f"Usage is at {self.spent() / self.limit:.0%} of the ${self.limit:.2f} budget."
        return ""

    # -- figures -----------------------------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        with self._lock:
            data = json.loads(json.dumps(self.data))
        totals = {"calls": 0, "input_tokens": 0, "output_tokens": 0}
        for row in data["models"].values():
            for k in totals:
                totals[k] += row[k]
        return {"since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data["since"])),
                "totals": totals, "cost_usd": round(data["cost_usd"], 6), "models": data["models"],
                "assistants": data["assistants"], "counters": data["counters"], "days": data.get("days", {}),
                "budget": {"limit_usd": self.limit, "spent_usd": round(data["cost_usd"], 6),
                           "state": self.budget_state(), "message": self.budget_message()},
                "unpriced_models": sorted(m for m in data["models"] if not self.price(m))}

    def reset(self) -> None:
        with self._lock:
            with open(self.path.with_name(".usage.lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self.path.unlink(missing_ok=True)
            self.data, self._delta = _empty(), _zero()
            self._save()


def _zero() -> dict[str, Any]:
    """Figures of nothing: what a process has counted since it last saved starts here."""
    return {"models": {}, "assistants": {}, "counters": {}, "cost_usd": 0.0, "days": {}}


def _added(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """base + delta, table by table, row by row (a new dict; neither is changed)."""
    out = json.loads(json.dumps(base))
    for table in ("models", "assistants"):
        for key, row in delta[table].items():
            _add_row(out[table].setdefault(key, {}), row)
    for day, rows in delta["days"].items():
        for key, row in rows.items():
            _add_row(out.setdefault("days", {}).setdefault(day, {}).setdefault(key, {}), row)
    for name, n in delta["counters"].items():
        out["counters"][name] = out["counters"].get(name, 0) + n
    out["cost_usd"] = round(out["cost_usd"] + delta["cost_usd"], 8)
    return out


def _add_row(have: dict[str, Any], row: dict[str, Any]) -> None:
    for field, value in row.items():
        total = have.get(field, 0) + value
        have[field] = round(total, 8) if field == "cost_usd" else total
