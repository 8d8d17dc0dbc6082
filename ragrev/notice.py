"""One-line notices on standard error while ragrev waits for something
(another runner's lock, a Milvus Lite file, a process sharing an embedded
server): the first at once, then at most one every ``every`` seconds."""
from __future__ import annotations

import sys
import time


class Notice:
    def __init__(self, every: float = 5.0, stream=None):
        self.every = every
        self.stream = stream
        self._last: float | None = None

    def __call__(self, text: str) -> bool:
        """Print ``ragrev: waiting: TEXT`` unless one was printed less than
        ``every`` seconds ago; whether it printed."""
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every:
            return False
        self._last = now
        stream = self.stream or sys.stderr
        try:
            stream.write(f"ragrev: waiting: {text}\n")
            stream.flush()
        except (OSError, ValueError):  # a closed stream (at exit): nothing to say it on
            pass
        return True
