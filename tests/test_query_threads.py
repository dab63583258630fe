"""Queries are embedded on one or two torch threads, whichever has been faster lately."""
from __future__ import annotations

import numpy as np
import torch

from indexes.embeddings import LocalEmbedder, _ThreadChoice


def test_the_faster_thread_count_wins_and_the_other_is_retried_now_and_then():
    choice = _ThreadChoice()
    first = [choice.pick() for _ in range(2)]
    assert first == [1, 1]  # nothing timed yet: try one thread
    choice.record(1, 20.0)
    assert choice.pick() == 2  # then two
    choice.record(2, 12.0)
    picks = [choice.pick() for _ in range(100)]
    assert picks.count(2) >= 97 and 1 in picks  # two threads are faster; one is still re-timed
    for _ in range(20):  # the machine got busy: two threads slowed down a lot
        choice.record(2, 90.0)
    assert [choice.pick() for _ in range(10)].count(1) >= 9


def test_a_query_embeds_the_same_on_one_or_two_threads():
    embedder = LocalEmbedder()
    text = "how are rate limited calls retried?"
    before = torch.get_num_threads()
    vectors = []
    for n in (1, 2):
        torch.set_num_threads(n)
        vectors.append(embedder.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0])
    torch.set_num_threads(before)
    assert float(np.dot(vectors[0], vectors[1])) > 0.9999
    assert embedder.embed([text]).shape == (1, 384) and torch.get_num_threads() == before
