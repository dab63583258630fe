"""The error a source the user gave raises when it cannot be used: one clear sentence, never a traceback.

Its own module so that what ingest/sources.py builds on (ingest/outbound.py) can raise it too;
callers import it from ingest.sources, as they always have.
"""
from __future__ import annotations


class SourceError(ValueError):
    """A source the user gave that cannot be used; the message is one clear sentence."""
