"""Embeddings, vector stores, the lexical index and hybrid search."""
