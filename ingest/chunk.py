"""The chunk: the unit that flows from ingest through the indexes to the answers."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass
class Chunk:
    text: str  # the real source lines, shown and cited
    path: str  # relative to the source root, '/' separated
    start_line: int  # 1-based, inclusive
    end_line: int
    kind: str  # "doc" | "code"
    language: str
    symbol: str = ""  # qualified name for code (Class.method), "" for module-level code
    headings: list[str] = field(default_factory=list)  # breadcrumbs for docs
    context: str = ""  # a line or two that situate the chunk (class header, signature) for embedding
    source_id: str = ""
    link: str = ""
    id: str = ""
    library: str = ""  # the library and version of its source (indexes/catalog.py fills them in when read)
    version: str = ""

    def finalize(self, source_id: str, link: str) -> Chunk:
        """The chunk as one source holds it. Its id is its content's address: the same place and text in
        two sources (two versions of a library, a file unchanged between them) is one chunk, stored and
        embedded once; which sources hold it, each with its own link, the catalog records beside it."""
        self.source_id = source_id
        self.link = link
        key = "\0".join([self.path, str(self.start_line), str(self.end_line), self.kind, self.language, self.symbol,
                         "\x1f".join(self.headings), self.context, self.text])
        self.id = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]
        return self

    @property
    def title(self) -> str:
        """What the chunk is about, for display: the symbol or the heading trail."""
        if self.symbol:
            return self.symbol
        return " > ".join(self.headings)

    def embed_text(self) -> str:
        """Text given to the embedding model: where it is and what it is, then the source.

        The model reads only its first 256 word pieces, so the situating lines come first.
        """
        head = [self.path.replace("/", " / ").replace("_", " ")]
        if self.kind == "code":
            if self.symbol:
                head.append(self.symbol.replace(".", " . ").replace("_", " "))
            if self.context:
                head.append(self.context)
        elif self.headings:
            head.append(" > ".join(self.headings))
        return "\n".join(head) + "\n" + self.text
