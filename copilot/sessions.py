"""The chat's conversations: starting one, reading it, storing its messages, feedback and usage.

A conversation store that fails (a disk, a shared database out of reach) costs the record, never
the answer: the turn goes on and the failure is logged (`store_failed`).
"""
from __future__ import annotations

import logging
import sys
import uuid

from copilot.conversations import Conversations
from copilot.database import DatabaseDown
from copilot.monitor import Monitor

log = logging.getLogger("devcopilot.chat")


def store_failed(what: str) -> None:
    """Log a failure of the conversation store: one line when its database is out of reach (said again
    for every message while it is down), the traceback for anything else."""
    error = sys.exc_info()[1]
    if isinstance(error, DatabaseDown):
        log.warning("%s: %s", what, error)
    else:
        log.exception(what)


class Sessions:
    """The Copilot's conversations (copilot/conversations.py) as a turn and the doors use them."""

    def __init__(self, conversations: Conversations, monitor: Monitor):
        self.conversations = conversations
        self.monitor = monitor

    def new(self, history: list[dict] | None = None, owner: str = "", origin: str = "") -> str:
        """A new conversation; `history` ({role, content[, assistant]}) seeds it (e.g. from the API).
        `owner` is the signed-in user, `origin` the door ("web", "api", "cli")."""
        seed = [(h["role"], h["content"], h.get("assistant", "")) for h in history or []
                if h.get("role") in ("user", "assistant") and isinstance(h.get("content"), str)]
        try:
            return self.conversations.new(owner=owner, origin=origin, messages=seed)
        except Exception:  # the store is down: the conversation is answered, and recorded once it is back
            store_failed("could not start a stored conversation")
            return uuid.uuid4().hex

    def history(self, session_id: str) -> list[dict]:
        return [{k: m[k] for k in ("role", "assistant", "content", "sources", "message_id")}
                for m in self.conversations.messages(session_id)]

    def read(self, sid: str) -> list[dict]:
        """The conversation so far; a store that cannot be read costs the context, not the answer."""
        try:
            return self.conversations.messages(sid) if sid and self.conversations.exists(sid) else []
        except Exception:
            store_failed("could not read the conversation")
            return []

    def store(self, sid: str, role: str, content: str, assistant: str = "", sources=None, model: str = "",
              message_id: str | None = None, outcome: str = "") -> None:
        """Record a message; a failing disk costs the record, not the answer."""
        try:
            self.conversations.add(sid, role, content, assistant, sources, model, message_id, outcome)
        except Exception:
            store_failed("could not store a message")

    def feedback(self, message_id: str, up: bool, comment: str = "") -> None:
        self.conversations.feedback(message_id, up, comment)

    def usage(self, chat_model: str, owner: str | None = None) -> dict:
        """The monitor's figures, with what the conversations tell: answers by kind and feedback per
        day, and the coverage gaps (questions answered "I don't know" or given a thumbs-down).

        With `owner` (a signed-in user), what the conversations tell is theirs alone, and `owner` says
        so; the monitor's figures (model calls, tokens, cost, budget) are the whole server's, which it
        counts per model and assistant, not per user."""
        figures = self.monitor.figures()
        figures["feedback"] = self.conversations.feedback_counts(owner)
        figures["chat_model"] = chat_model
        figures["answers_by_day"] = self.conversations.outcomes_by_day(owner)
        figures["feedback_by_day"] = self.conversations.feedback_by_day(owner)
        figures["gaps"] = self.conversations.gaps(owner=owner)
        if owner is not None:
            figures["owner"] = owner
        return figures
