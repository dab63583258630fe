"""A turn's events folded into what every door shows: who spoke, what they said, what they cite.

`Copilot.chat` yields events (copilot/events.py); a door feeds them to a `Reply` one by one as
they arrive (the web chat, the CLI) and renders what `feed` says changed, or takes them all at
once (`collect`). The API and MCP answer with the whole turn as one text: a `Transcript` writes
it, event by event when streamed, in the door's citation style (copilot/citations.py).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from copilot.citations import CiteStyle, cite_block
from copilot.events import END, ERROR, NOTICE, SOURCES, START, TOKEN, Event, Source


@dataclass
class Answer:
    """One speaker's message, as it arrives."""
    assistant: str
    message_id: str = ""
    pieces: list[str] = field(default_factory=list)  # its text as it streamed
    sources: list[Source] = field(default_factory=list)
    ended: bool = False
    whole: str = ""  # its text as the END event gives it (set once ended)

    @property
    def text(self) -> str:
        """What it says: the whole text once ended, else what has streamed so far."""
        return self.whole or "".join(self.pieces)


@dataclass
class Note:
    """A notice or an error: a word on the side of the answers."""
    assistant: str
    text: str
    error: bool
    first: bool  # nothing came before it in the turn


class Reply:
    """The fold: `feed` takes one event and returns what it changed."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []  # each speaker's message, in the order they spoke
        self.notes: list[Note] = []
        self.current: Answer | None = None  # the answer streaming now
        self.failed = False  # an error was said

    @property
    def speakers(self) -> list[str]:
        return [a.assistant for a in self.answers]

    @property
    def sources(self) -> list[tuple[str, Source]]:
        """(speaker, source) for every source of every answer that ended, in order."""
        return [(a.assistant, s) for a in self.answers if a.ended for s in a.sources]

    def feed(self, ev: Event) -> Answer | Note | None:
        """Fold `ev` in: the answer it started, added to or ended, or the note it is; None when it
        belongs to no answer (a token, sources or an end with none started) or is of no known kind."""
        kind = ev.type
        answer = self.current
        if kind == TOKEN:  # most events: kept short
            if answer is not None:
                answer.pieces.append(ev.text)
            return answer
        if kind == START:
            answer = self.current = Answer(ev.assistant, ev.message_id)
            self.answers.append(answer)
            return answer
        if kind == SOURCES:
            if answer is not None:
                answer.sources = list(ev.sources)
            return answer
        if kind == END:
            if answer is not None:  # the end's text and sources, else what streamed
                answer.whole = ev.text or "".join(answer.pieces)
                answer.sources = list(ev.sources) or answer.sources
                answer.message_id = ev.message_id or answer.message_id
                answer.ended = True
                self.current = None
            return answer
        if kind in (NOTICE, ERROR):
            note = Note(ev.assistant, ev.text, kind == ERROR, not (self.answers or self.notes))
            self.notes.append(note)
            self.failed = self.failed or note.error
            return note
        return None

    def take(self, events: Iterable[Event]) -> Reply:
        """Every event of a turn, folded in."""
        for ev in events:
            self.feed(ev)
        return self


def collect(events: Iterable[Event]) -> Reply:
    """A whole turn's events as one Reply."""
    return Reply().take(events)


class Transcript(Reply):
    """A Reply that also writes the turn as one text, as the API and MCP answer: each answer under
    its speaker's name (`labelled`) followed by its sources in `cites`' style, notices and errors in
    paragraphs of their own. Feed it with `write`."""

    def __init__(self, cites: CiteStyle, labelled: bool = True, base: str = "") -> None:
        super().__init__()
        self.cites = cites
        self.labelled = labelled
        self.base = base  # the URL the citations' links are under
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()

    def write(self, ev: Event) -> str | None:
        """Fold `ev` in and return the text it adds: None for none, "" for an unlabelled answer's start
        (the answer has begun, with nothing to show yet)."""
        kind = ev.type
        if kind == TOKEN:  # most events: `feed`'s step for a token, done here, as this runs for every token
            answer = self.current
            if answer is None:
                return None
            text = ev.text
            answer.pieces.append(text)
            self.parts.append(text)
            return text
        item = self.feed(ev)
        if item is None or kind == SOURCES:
            return None
        if kind == START:
            text = ("\n\n" if len(self.answers) > 1 else "") + (f"**{item.assistant}:** " if self.labelled else "")
        elif kind == END:
            text = cite_block(item.sources, self.cites, self.base)
            if not text:
                return None
        else:
            text = ("" if item.first else "\n\n") + item.text
        self.parts.append(text)
        return text

    def take(self, events: Iterable[Event]) -> Transcript:
        for ev in events:
            self.write(ev)
        return self
