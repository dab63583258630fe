"""The Usage tab's charts, drawn with matplotlib from `Copilot.usage()`.

Four panels in one figure: tokens per day by assistant, cost per day by assistant, answers per
day by kind (a model's, offline quotes, "I don't know"), and thumbs up/down per day. Days with
nothing recorded are left out rather than drawn as empty bars.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The specialists' answers by kind; the Guide's greetings and hand-overs are not counted.
KIND_LABELS = {"model": "model answer", "offline": "offline (quoted passages)", "dont_know": "\"I don't know\"",
               "missing": "nothing indexed", "down": "search failed"}
KIND_COLOURS = {"model": "#4c78a8", "offline": "#72b7b2", "dont_know": "#e45756", "missing": "#f58518",
                "down": "#9d755d"}
MIN_SLOTS = 7  # a week's width at least, so one day is a bar, not a wall


def usage_figure(data: dict, days: int = 30) -> Figure:
    import matplotlib  # here, not at the top: it is a quarter of a second of every server start

    matplotlib.use("Agg")  # no display: figures are rendered to images for the page
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 5.4), layout="constrained")
    (tokens, cost), (kinds, thumbs) = axes
    daily = _last(data.get("days") or {}, days)
    _stacked(tokens, daily, lambda row: row["input_tokens"] + row["output_tokens"], "Tokens per day, by assistant")
    _stacked(cost, daily, lambda row: row["cost_usd"], "Cost per day (USD), by assistant")
    answers = _last(data.get("answers_by_day") or {}, days)
    _stacked(kinds, {d: {k: {"n": n} for k, n in row.items() if k in KIND_LABELS} for d, row in answers.items()},
             lambda row: row["n"],
             "Answers per day, by kind", labels=KIND_LABELS, colours=KIND_COLOURS)
    fb = _last(data.get("feedback_by_day") or {}, days)
    _stacked(thumbs, {d: {"up": {"n": r["up"]}, "down": {"n": r["down"]}} for d, r in fb.items()},
             lambda row: row["n"], "Feedback per day", colours={"up": "#54a24b", "down": "#e45756"},
             labels={"up": "thumbs up", "down": "thumbs down"})
    return fig


def _last(by_day: dict, days: int) -> dict:
    return dict(sorted(by_day.items())[-days:])


def _stacked(ax, by_day: dict[str, dict[str, dict]], value, title: str, labels: dict | None = None,
             colours: dict | None = None) -> None:
    """Bars per day, stacked by series (assistant or kind), with a legend."""
    ax.set_title(title, fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    order = list(colours or {})  # the colour table's order, then the rest by name
    series = sorted({name for row in by_day.values() for name in row},
                    key=lambda s: (order.index(s) if s in order else len(order), s))
    if not by_day or not series:
        ax.text(0.5, 0.5, "nothing recorded yet", ha="center", va="center", transform=ax.transAxes, color="#888")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    days = list(by_day)
    x = range(len(days))
    bottom = [0.0] * len(days)
    for name in series:
        heights = [float(value(by_day[d][name])) if name in by_day[d] else 0.0 for d in days]
        ax.bar(x, heights, bottom=bottom, label=(labels or {}).get(name, name), width=0.7,
               color=(colours or {}).get(name))
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xticks(list(x), [d[5:] for d in days], rotation=45 if len(days) > 7 else 0, ha="right"
                  if len(days) > 7 else "center")
    ax.set_xlim(-0.6, max(len(days), MIN_SLOTS) - 0.4)
    ax.set_ylim(0, max(bottom) * 1.35 or 1)  # room for the legend above the bars
    ax.legend(fontsize=7, frameon=False, loc="upper left")
