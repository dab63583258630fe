"""What the embedders share: their error, the size of a query call, and handing memory back.

Its own module so the PyTorch and ONNX embedders can both use it without importing each other.
"""
from __future__ import annotations


class EmbeddingError(RuntimeError):
    """The embedding model could not be used; the message is one clear sentence."""


SMALL_CALL = 4  # texts; up to this many are a query: embedded on the calling thread, one thread


_trim = None


def release_memory() -> None:
    """Hand freed heap back to the OS. glibc keeps the memory a batch's activations used, so without
    this an ingest's RSS climbs to the largest batches seen and stays there while the process runs."""
    global _trim
    if _trim is None:
        try:
            import ctypes

            _trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc: nothing to do
            _trim = False
    if _trim:
        _trim(0)
