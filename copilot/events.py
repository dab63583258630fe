"""What a chat turn yields: a stream of events the doors render (copilot/reply.py folds them)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

EXCERPT_CHARS = 4000  # of a source's text, kept with it (and stored with the message)


class Kind(StrEnum):
    """What an event says. A StrEnum, so `ev.type == "token"` holds as it always has."""
    START = "start"  # a speaker begins an answer (its message_id is set)
    TOKEN = "token"  # a piece of the answer's text
    SOURCES = "sources"  # the sources the answer cites
    END = "end"  # the answer is complete: its whole text, its sources, its message_id
    NOTICE = "notice"  # a word on the side (a retry, the budget), not part of an answer
    ERROR = "error"  # the turn could not be answered


# The kinds under plain names, for the code that makes or reads an event per token: in Python 3.11
# `Kind.TOKEN` is looked up through the enum's class at about 1 µs a time, these at a global's cost.
START, TOKEN, SOURCES, END, NOTICE, ERROR = (Kind.START, Kind.TOKEN, Kind.SOURCES, Kind.END, Kind.NOTICE,
                                             Kind.ERROR)


@dataclass
class Source:
    """One numbered citation (copilot/citations.py writes it as each door shows it)."""
    n: int
    path: str
    start_line: int
    end_line: int
    title: str  # symbol or heading trail
    link: str
    kind: str
    language: str
    excerpt: str  # the chunk text (may be trimmed)
    kb: str = ""  # the knowledge base it came from
    origin: str = ""  # where its source was indexed from and when ("git 1a2b3c (tag v1); indexed ...")
    library: str = ""  # the library and version its source holds
    version: str = ""
    versioned: bool = False  # its KB holds several versions of that library: the citation says which

    @classmethod
    def of(cls, n: int, chunk, kb: str = "", origin: str = "", versioned: bool = False) -> Source:
        """Source `n`: an indexed chunk (indexes/search.py), from KB `kb`."""
        return cls(n, chunk.path, chunk.start_line, chunk.end_line, chunk.title, chunk.link, chunk.kind,
                   chunk.language, chunk.text[:EXCERPT_CHARS], kb, origin, getattr(chunk, "library", ""),
                   getattr(chunk, "version", ""), versioned)

    @property
    def version_label(self) -> str:
        """"openai-agents 0.23.1" when the citation says its version, else ""."""
        return f"{self.library} {self.version}".strip() if self.versioned and self.version else ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Event:
    type: Kind
    assistant: str  # display name of the speaker
    text: str = ""  # token text for TOKEN; the full answer for END; the message for NOTICE/ERROR
    sources: list[Source] = field(default_factory=list)  # on SOURCES (and repeated on END)
    message_id: str = ""  # set on START/END; used for feedback
