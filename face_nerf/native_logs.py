"""mediapipe's native log lines kept off the console.

Every mediapipe graph prints TFLite and absl lines to the process's standard error as it starts
("INFO: Created TensorFlow Lite XNNPACK delegate", "W0000 ... Feedback manager requires ..."). They
come from C++, so neither Python's logging nor ``GLOG_minloglevel`` reaches them, and they look like
errors to whoever reads a Space's log. ``quiet_native_logs`` points file descriptor 2 at /dev/null
while a graph runs (tens of milliseconds to a second); whatever else the process writes to standard
error in that window is dropped too, so it is kept to the graph runs.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

QUIET_ENV = "FACELAB_NATIVE_LOGS"  # set to 1 to see mediapipe's native lines (debugging)


class _Silencer:
    """Reference-counted redirection of fd 2: graphs of several threads may overlap."""

    def __init__(self):
        self.lock = threading.Lock()
        self.depth = 0
        self.saved: int | None = None

    def enter(self) -> None:
        with self.lock:
            self.depth += 1
            if self.depth == 1:
                sys.stderr.flush()
                self.saved = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)

    def exit(self) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.saved is not None:
                os.dup2(self.saved, 2)
                os.close(self.saved)
                self.saved = None


_SILENCER = _Silencer()


@contextmanager
def quiet_native_logs():
    """Native writes to standard error are dropped inside (unless $FACELAB_NATIVE_LOGS=1)."""
    if os.environ.get(QUIET_ENV) == "1":
        yield
        return
    _SILENCER.enter()
    try:
        yield
    finally:
        _SILENCER.exit()
