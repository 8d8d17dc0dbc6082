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

Two wrappers deal with the cost of real models: :func:`cached` keeps vectors
by (model, content hash) in a SQLite file, so no text is embedded twice
(across resumes, downgrade + upgrade, distributed workers on one machine);
:func:`remote` rate-limits and retries a remote embedding API (tenacity).
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

    def __getstate__(self):
        # the bucket cache (up to a million features) is not pickled: it would travel to every Dask task
        return {**self.__dict__, "_buckets": {}}

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


# --- cost: a cache keyed by (model, content hash), and remote embedders ---------------------------

def model_key(embed) -> str:
    """What identifies an embedding's model for the cache: its
    ``ragrev_normalized()`` (parameters included), else its qualified name."""
    from ragrev.ops import callable_fingerprint, normalize

    norm = embed.ragrev_normalized() if hasattr(embed, "ragrev_normalized") else callable_fingerprint(embed)
    return json.dumps(normalize(norm), sort_keys=True)


def content_hash(text) -> bytes:
    return hashlib.sha256(str(text).encode("utf-8")).digest()


#: where :func:`cached` keeps vectors unless told (relative to the working directory)
DEFAULT_CACHE = ".ragrev/embeddings.sqlite"


class CachedEmbedder:
    """An embedding whose vectors are kept by (model, sha256 of the text) in
    a SQLite file (see :func:`cached`)."""

    def __init__(self, embed, path: str | None = None, model: str | None = None):
        import os

        if not callable(embed):
            raise ValueError("cached(): embed must be a callable texts -> vectors")
        self.embed = embed
        self.path = os.path.abspath(path or os.environ.get("RAGREV_EMBED_CACHE") or DEFAULT_CACHE)
        self.model = model or model_key(embed)
        self.__name__ = f"cached({getattr(embed, '__name__', type(embed).__name__)})"
        self.hits = self.misses = 0
        self._db = None
        self._pid = None
        if isinstance(getattr(embed, "dim", None), int):
            self.dim = embed.dim

    def _conn(self):
        import os
        import sqlite3

        if self._db is None or self._pid != os.getpid():  # not shared across a fork
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, hash BLOB NOT NULL, "
                       "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, hash))")
            db.commit()
            self._db, self._pid = db, os.getpid()
        return self._db

    def lookup(self, hashes: list[bytes]) -> dict[bytes, np.ndarray]:
        db, found = self._conn(), {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 500):
            part = unique[i:i + 500]
            rows = db.execute(f"SELECT hash, vec FROM vectors WHERE model = ? AND hash IN ({','.join('?' * len(part))})",
                              [self.model, *part]).fetchall()
            found.update((bytes(h), np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        return found

    def __call__(self, texts) -> np.ndarray:
        texts = list(texts)
        hashes = [content_hash(t) for t in texts]
        found = self.lookup(hashes)
        todo = {}
        for h, t in zip(hashes, texts):
            if h not in found and h not in todo:
                todo[h] = t
        if todo:
            vectors = np.asarray(self.embed(list(todo.values())), dtype=np.float32)
            if vectors.ndim != 2 or len(vectors) != len(todo):
                raise ValueError(f"{self.__name__}: the embedding returned an array of shape {vectors.shape} "
                                 f"for {len(todo)} texts")
            db = self._conn()
            with db:
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                               [(self.model, h, vectors.shape[1], v.tobytes()) for h, v in zip(todo, vectors)])
            found.update(zip(todo, vectors))
        self.misses += len(todo)
        self.hits += len(texts) - len(todo)
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0) or 0), dtype=np.float32)
        return np.stack([found[h] for h in hashes])

    def ragrev_normalized(self):
        # the cache does not change the vectors: a revision keeps its checksum with or without it
        return self.embed.ragrev_normalized() if hasattr(self.embed, "ragrev_normalized") else {
            "callable": model_key(self.embed)}

    def ragrev_rate(self):
        rate = getattr(self.embed, "ragrev_rate", None)
        return rate() if callable(rate) else None

    def __getstate__(self):  # picklable for distributed workers: the connection is reopened there
        return {**self.__dict__, "_db": None, "_pid": None}

    def __repr__(self) -> str:
        return f"cached({self.embed!r}, {self.path!r})"


def cached(embed, path: str | None = None, model: str | None = None) -> CachedEmbedder:
    """Wrap ``embed`` so each (model, text) is embedded once: vectors are kept
    in a SQLite file (``path``; else ``$RAGREV_EMBED_CACHE``; else
    ``.ragrev/embeddings.sqlite`` in the working directory) by ``model``
    (default: the embedding's ``ragrev_normalized()`` or qualified name) and
    the SHA-256 of the text. A resumed re-embed, or a downgrade followed by
    an upgrade, pays only for texts it has not embedded before."""
    return CachedEmbedder(embed, path, model)


class RemoteEmbedder:
    """An embedding called over the network, rate-limited and retried (see :func:`remote`)."""

    def __init__(self, fn, texts_per_second=None, tokens_per_minute=None, attempts: int = 6, max_wait: float = 60.0,
                 retry_on=(Exception,), dim: int | None = None):
        if not callable(fn):
            raise ValueError("remote(): fn must be a callable texts -> vectors")
        for name, value in (("texts_per_second", texts_per_second), ("tokens_per_minute", tokens_per_minute)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"remote(): {name} must be a positive number, not {value!r}")
        self.fn, self.texts_per_second, self.tokens_per_minute = fn, texts_per_second, tokens_per_minute
        self.attempts, self.max_wait, self.retry_on = attempts, max_wait, tuple(retry_on)
        self.__name__ = f"remote({getattr(fn, '__name__', type(fn).__name__)})"
        self.calls = self.retries = 0
        self._next = 0.0
        fdim = dim if dim is not None else getattr(fn, "dim", None)
        if isinstance(fdim, int):
            self.dim = fdim

    def _wait_turn(self, texts) -> None:
        import time

        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
        cost = 0.0
        if self.texts_per_second:
            cost = max(cost, len(texts) / self.texts_per_second)
        if self.tokens_per_minute:
            cost = max(cost, sum(estimate_tokens(t) for t in texts) * 60.0 / self.tokens_per_minute)
        self._next = max(now, self._next) + cost

    def __call__(self, texts):
        import tenacity

        texts = list(texts)

        def attempt():
            self._wait_turn(texts)
            self.calls += 1
            return self.fn(texts)

        def count(state):
            self.retries += 1

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_random_exponential(multiplier=0.5, max=self.max_wait),
            retry=tenacity.retry_if_exception_type(self.retry_on), before_sleep=count, reraise=True)
        return retrying(attempt)

    def ragrev_normalized(self):
        return self.fn.ragrev_normalized() if hasattr(self.fn, "ragrev_normalized") else {
            "callable": model_key(self.fn)}

    def ragrev_rate(self) -> dict:
        return {"texts_per_second": self.texts_per_second, "tokens_per_minute": self.tokens_per_minute}


def remote(fn, texts_per_second=None, tokens_per_minute=None, attempts: int = 6, max_wait: float = 60.0,
           retry_on=(Exception,), dim: int | None = None) -> RemoteEmbedder:
    """Wrap a remote embedding call ``fn(texts) -> vectors``: at most
    ``texts_per_second`` texts and ``tokens_per_minute`` tokens (estimated
    as :func:`estimate_tokens`) per unit of time, spread evenly; a call that
    raises one of ``retry_on`` is retried up to ``attempts`` times with
    randomized exponential backoff (at most ``max_wait`` seconds) by
    `tenacity <https://tenacity.readthedocs.io>`_. ``--plan`` uses the rates
    to estimate the time of a re-embed."""
    return RemoteEmbedder(fn, texts_per_second, tokens_per_minute, attempts, max_wait, retry_on, dim)


def estimate_tokens(text) -> int:
    """A model-free token estimate: about four characters per token (the
    usual figure for English with BPE tokenizers), at least one."""
    return max(1, (len(str(text)) + 3) // 4)
