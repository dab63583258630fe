"""What a chat turn yields: a stream of events the UI, the API and the CLI render."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Source:
    """One numbered citation."""
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

    def label(self) -> str:
        where = f"{self.path}:{self.start_line}-{self.end_line}"
        title = f" — {self.title}" if self.title else ""
        return f"[{self.n}] {where}{title}" + (f" (KB {self.kb})" if self.kb else "")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Event:
    type: str  # "start" | "token" | "sources" | "end" | "notice" | "error"
    assistant: str  # display name of the speaker
    text: str = ""  # token text for "token"; the full answer for "end"; the message for notice/error
    sources: list[Source] = field(default_factory=list)  # on "sources" (and repeated on "end")
    message_id: str = ""  # set on start/end; used for feedback
