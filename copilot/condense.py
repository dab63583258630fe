"""Turn the user's message into a standalone retrieval query.

A follow-up such as "and what does it return?" means nothing to a search index on its own.
With a model, the follow-up is rewritten using the conversation, and a question in another
language is rewritten into the corpus language (English by default) so that retrieval over
English docs and code works; the answer still comes in the user's language. Without a model,
a follow-up borrows the identifiers and the topic of the previous exchange, and a question in
another language is searched as written: the search reads Chinese through its term map
(indexes/terms_zh.py) beside the Latin-script words (identifiers, product names) it holds.
"""
from __future__ import annotations

import re

from copilot.models import ModelUnavailable, ResilientModel, StreamCut
from copilot.prompts import language_of
from indexes.query_kind import CODEISH

FOLLOW_UP = re.compile(
    r"^\s*(and|also|but|so|then|what about|how about|same|ok|okay)\b|\b(it|its|it's|that|this|those|these|they|"
    r"them|their|there|the same|above|previous|former|latter|one)\b|它|这个|那个|这些|那些|呢|上面|刚才", re.IGNORECASE)


def looks_like_follow_up(question: str) -> bool:
    return len(re.findall(r"\w+", question)) <= 14 and bool(FOLLOW_UP.search(question))


def condense_prompt(corpus_language: str) -> str:
    return (f"You rewrite the user's last message into one standalone search query for a {corpus_language} "
            "index of a software framework's documentation and source code. Resolve pronouns and references "
            "using the conversation. Keep class, function, argument and file names exactly as written. "
            f"Write the query in {corpus_language}. Output only the query, no quotes, no explanation.")


def local_condense(question: str, history: list[dict]) -> str:
    """Borrow what the previous exchange was about: its identifiers and the top source's title."""
    prev_q = next((h["content"] for h in reversed(history) if h["role"] == "user"), "")
    prev_a = next((h for h in reversed(history) if h["role"] == "assistant" and h.get("sources")), None)
    extra: list[str] = [t.strip("`()") for t in CODEISH.findall(prev_q)]
    if prev_a is not None:
        extra.append(prev_a["sources"][0].title)
    if not extra:
        extra.append(re.sub(r"@\s?\w+", "", prev_q))
    seen: list[str] = []
    for e in extra:
        if e and e not in seen and e not in question:
            seen.append(e)
    return (question + " " + " ".join(seen)).strip()


def searched_as_is(question: str, history: list[dict], corpus_language: str) -> bool:
    """Whether `condense` leaves the question as it is, whatever the model: it is neither a follow-up
    nor in another language than the corpus."""
    return not _follow_up(question, history) and not _foreign(question, corpus_language)


def _follow_up(question: str, history: list[dict]) -> bool:
    return bool(history) and looks_like_follow_up(question)


def _foreign(question: str, corpus_language: str) -> bool:
    return language_of(question) is not None and language_of(corpus_language) is None


def condense(question: str, history: list[dict], model: ResilientModel | None, corpus_language: str,
             assistant: str) -> tuple[str, str]:
    """(retrieval query, how: "as-is" | "local" | "model" | "model-failed")."""
    follow_up = _follow_up(question, history)
    foreign = _foreign(question, corpus_language)
    if model is None:  # no model to translate: the search reads a Chinese question itself (its term map)
        return (local_condense(question, history), "local") if follow_up else (question, "as-is")
    if not (follow_up or foreign):
        return question, "as-is"
    convo = "\n".join(f"{h['role']}: {h['content'][:600]}" for h in history[-4:])
    msgs = [{"role": "system", "content": condense_prompt(corpus_language)},
            {"role": "user", "content": (f"Conversation:\n{convo}\n\n" if convo else "")
             + f"Last message: {question}\n\nStandalone {corpus_language} search query:"}]
    try:
        out = model.complete(msgs, assistant=assistant, max_tokens=120).strip().strip('"').splitlines()
    except (ModelUnavailable, StreamCut):
        fallback = local_condense(question, history) if follow_up else question
        return fallback, "model-failed"
    query = out[0].strip() if out and out[0].strip() else ""
    if not query or len(query) > 500:
        return (local_condense(question, history), "local") if follow_up else (question, "as-is")
    return query, "model"
