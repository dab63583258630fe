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
data dir, or in the shared database when `server.database_url` is set, so they survive restarts;
`devcopilot usage --reset` starts over.
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from copilot.config import Config
from copilot.database import Database, DatabaseDown

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


class UsageFile:
    """The figures in `usage.json` in the data dir. Several processes (`serve --workers N`) share the
    file: under a lock, each adds what it counted since its last save to what the file holds now."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """What the file holds; None when it is missing or damaged."""
        try:
            return _checked(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None

    def merge(self, delta: dict[str, Any]) -> dict[str, Any]:
        """Add `delta` to the file, written atomically; the figures it then holds."""
        tmp = self.path.with_name(f".usage.{os.getpid()}.{threading.get_ident()}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            merged = _added(self.load() or _empty(), delta)
            tmp.write_text(json.dumps(merged, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        return merged

    def clear(self) -> None:
        with self._locked():
            self.path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self):
        with open(self.path.with_name(".usage.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


class UsageTable:
    """The figures in one row of the shared database (`server.database_url`), so every server adds to
    the same figures and spends the same budget; merged as the file is, under the row's lock."""

    SCHEMA = "CREATE TABLE IF NOT EXISTS usage_figures (id INTEGER PRIMARY KEY, figures TEXT)"

    def __init__(self, url: str):
        self.db = Database(url, self.SCHEMA)

    def load(self) -> dict[str, Any] | None:
        row = self.db.one("SELECT figures FROM usage_figures WHERE id=1")
        try:
            return _checked(json.loads(row[0])) if row else None
        except ValueError:
            return None

    def merge(self, delta: dict[str, Any]) -> dict[str, Any]:
        with self.db.transaction() as tx:
            tx.all("INSERT INTO usage_figures (id, figures) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                   (json.dumps(_empty()),))
            tx.lock_row("usage_figures", "id", 1)
            merged = _added(self.load() or _empty(), delta)
            tx.all("UPDATE usage_figures SET figures=? WHERE id=1", (json.dumps(merged),))
        return merged

    def clear(self) -> None:
        self.db.all("DELETE FROM usage_figures WHERE id=1")


def _checked(data: Any) -> dict[str, Any] | None:
    """Saved figures, or None when they are not figures."""
    if isinstance(data, dict) and {"models", "assistants", "counters"} <= set(data):
        data.setdefault("days", {})  # figures saved before days were kept
        return data
    return None


def usage_store(cfg: Config) -> UsageFile | UsageTable:
    """Where the figures are kept: the shared database at `server.database_url`, else usage.json."""
    url = cfg.server.database_url
    return UsageTable(url) if url else UsageFile(cfg.data_dir / "usage.json")


class Monitor:
    def __init__(self, cfg: Config, store: UsageFile | UsageTable | None = None):
        self.store = store or usage_store(cfg)
        self.prices = {**DEFAULT_PRICES, **{k: dict(v) for k, v in (cfg.prices or {}).items()
                                            if isinstance(v, dict)}}
        self.limit = float(cfg.budget.limit_usd or 0.0)
        self.warn_ratio = float(cfg.budget.warn_ratio)
        self._lock = threading.Lock()
        self._dirty, self._saved_at = False, 0.0
        self._timer: threading.Timer | None = None
        self.data = self._load()
        self._delta = _zero()  # counted here since the last save; merged into the stored figures by _save
        atexit.register(self.flush)

    def _load(self) -> dict[str, Any]:
        try:
            return self.store.load() or _empty()
        except DatabaseDown as e:
            log.warning("could not read the usage figures: %s", e)
            return _empty()  # missing, damaged or out of reach: start over rather than fail the chat

    def _save(self) -> None:
        """Add this process's changes to the stored figures (other processes and servers add theirs).
        A failing disk or database keeps them in memory, added at the next save, rather than break a chat."""
        self._dirty, self._saved_at = False, time.monotonic()
        try:
            merged = self.store.merge(self._delta)
            self.data, self._delta = merged, _zero()
        except DatabaseDown as e:  # one sentence says it all
            log.warning("could not save the usage figures: %s", e)
        except OSError:
            log.warning("could not save the usage figures", exc_info=True)

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
            # With a budget, spending is shared at once (other processes stop on it); without one,
            # at most once a second, like the counters: a save is a locked read and write of every figure.
            self._changed(at_once=self.limit > 0)

    def count(self, name: str, n: int = 1) -> None:
        """A custom counter (retrieval calls, offline answers, retries...).

        Counters are written at most once a second (and at exit): they sit on the path to the first token.
        Tokens and cost too, unless a budget is set (see `record`).
        """
        with self._lock:
            for figures in (self.data, self._delta):
                figures["counters"][name] = figures["counters"].get(name, 0) + n
            self._changed()

    def _changed(self, at_once: bool = False) -> None:
        """Under the lock, after a change: save now if asked or if the last save is a second old;
        else within a second even if nothing else is counted meanwhile, so the figures other
        processes read (`devcopilot usage`, another worker's Usage tab) are never older."""
        self._dirty = True
        if at_once or time.monotonic() - self._saved_at >= 1.0:
            self._save()
        elif self._timer is None or not self._timer.is_alive():
            self._timer = threading.Timer(1.0, self.flush)
            self._timer.daemon = True
            self._timer.start()

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
            self.store.clear()
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
