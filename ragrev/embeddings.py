"""Embedding functions for ``op.<milvus store>.reembed``.

An embedding function is any callable that takes a list of texts and returns
one vector per text (a sequence of floats each, or a 2-D numpy array). When it
has a ``dim`` attribute, ``preflight`` checks the dimension without calling
it; otherwise it is called once on a probe text before anything changes.

Two are shipped, both local and deterministic (no model, no download):

- :func:`hashing` — feature hashing of word unigrams and bigrams into ``dim``
  signed buckets, L2-normalized. Texts sharing words get close vectors, so
  it is fit for demos and tests of a model change (new dim, new vectors).
- :func:`identity` — the "text" already is a vector (a list of floats, or a
  string of comma-separated or JSON floats); returned as is. For benchmarks
  that measure the machinery of ``reembed`` without any model cost.

Both expose ``ragrev_normalized()`` so that a revision's checksum changes when
their parameters do.
"""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np

_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Deterministic bag-of-words embedding by feature hashing (see :func:`hashing`)."""

    def __init__(self, dim: int = 256, seed: int = 0, bigrams: bool = True):
        if not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"hashing embedding: dim must be a positive integer, not {dim!r}")
        self.dim = dim
        self.seed = seed
        self.bigrams = bigrams
        self.__name__ = f"hashing(dim={dim})"
        self._buckets: dict[str, tuple[int, float]] = {}

    def _bucket(self, feature: str) -> tuple[int, float]:
        hit = self._buckets.get(feature)
        if hit is None:
            digest = hashlib.blake2b(f"{self.seed}\x00{feature}".encode(), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            hit = (h % self.dim, 1.0 if (h >> 63) & 1 else -1.0)
            if len(self._buckets) < 1_000_000:
                self._buckets[feature] = hit
        return hit

    def features(self, text: str) -> list[tuple[str, float]]:
        words = _TOKEN.findall(str(text).lower()) or ["\x00empty"]
        feats = [(w, 1.0) for w in words]
        if self.bigrams:
            feats += [(f"{a} {b}", 0.5) for a, b in zip(words, words[1:])]
        return feats

    def __call__(self, texts) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            row = out[i]
            for feature, weight in self.features(text):
                idx, sign = self._bucket(feature)
                row[idx] += sign * weight
            norm = float(np.linalg.norm(row))
            if norm == 0.0:  # every feature cancelled out: fall back to one fixed bucket
                row[self._bucket("\x00zero")[0]] = 1.0
            else:
                row /= norm
        return out

    def ragrev_normalized(self) -> dict:
        return {"embedding": "hashing", "dim": self.dim, "seed": self.seed, "bigrams": self.bigrams}

    def __repr__(self) -> str:
        return f"hashing(dim={self.dim}, seed={self.seed})"


def hashing(dim: int = 256, seed: int = 0, bigrams: bool = True) -> HashingEmbedder:
    """A deterministic local embedding: words (and word pairs) hashed into
    ``dim`` signed buckets, L2-normalized, float32. Pure numpy, no model."""
    return HashingEmbedder(dim, seed, bigrams)


class IdentityEmbedder:
    """The input already is the vector (see :func:`identity`)."""

    def __init__(self, dim: int | None = None):
        self.dim = dim
        self.__name__ = "identity" if dim is None else f"identity(dim={dim})"

    def __call__(self, texts) -> list:
        out = []
        for value in texts:
            if isinstance(value, str):
                text = value.strip()
                value = json.loads(text) if text.startswith("[") else [float(x) for x in text.split(",") if x.strip()]
            if self.dim is not None and len(value) != self.dim:
                raise ValueError(f"identity embedding: got a vector of {len(value)} values, expected {self.dim}")
            out.append(value)
        return out

    def ragrev_normalized(self) -> dict:
        return {"embedding": "identity", "dim": self.dim}

    def __repr__(self) -> str:
        return self.__name__


def identity(dim: int | None = None) -> IdentityEmbedder:
    """An embedding that returns its input: for fields that already hold a
    vector (a float list, or text like ``"0.1,0.2"`` / ``"[0.1, 0.2]"``)."""
    return IdentityEmbedder(dim)
