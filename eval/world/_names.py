"""Fictional entity names.

Two generators with different purposes:

* :func:`recombined_name` mixes words of real names of the same relation (``"Nokia Vega"``). Training
  uses these as fictional subjects in reading-comprehension examples, so that every word of every entity,
  UNKNOWN ones included, occurs in training text (its token embeddings are trained) while no UNKNOWN fact
  is ever stated.
* :func:`syllable_name` builds names from syllables (``"Varnoketh Ulisar"``) for UNANSWERABLE questions:
  entities that appear nowhere, neither in training text nor in the corpus.
"""

from __future__ import annotations

import random

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st", "th", "vr")
_VOWELS = ("a", "e", "i", "o", "u", "ae", "io", "ou")
_CODAS = ("", "", "n", "r", "s", "th", "sk", "l", "x", "nd")


def recombined_name(rng: random.Random, words: list[str], n_words: int) -> str:
    """Join ``n_words`` random words of the pool (each word distinct)."""
    return " ".join(rng.sample(words, k=min(n_words, len(words))))


def syllable_name(rng: random.Random, n_words: int = 2) -> str:
    """A pronounceable invented name of ``n_words`` capitalised words of 2-3 syllables."""
    parts = []
    for _ in range(n_words):
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.randint(2, 3)))
        parts.append(word.capitalize())
    return " ".join(parts)
