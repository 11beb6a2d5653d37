"""Shared by the unit tests: logging as our processes configure it, written to a string."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

from bot.understanding import logs

UVICORN = ("uvicorn", "uvicorn.access", "uvicorn.error")


@contextlib.contextmanager
def captured_logs(fmt: logs.Format = "text") -> Iterator[io.StringIO]:
    """Logging configured as our processes do (at DEBUG, in `fmt`), written to a string; all restored after.

    Uvicorn's loggers are set as `python -m bot gateway` leaves them (log_config=None: no handler of their own,
    propagating): a uvicorn server started earlier in the test run with its default logging config changed them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in [*logs.FLOORS, *UVICORN]}
    uvicorn = {name: logging.getLogger(name) for name in UVICORN}
    saved = {name: (lg.handlers[:], lg.propagate, lg.disabled) for name, lg in uvicorn.items()}
    for lg in uvicorn.values():
        lg.handlers[:], lg.propagate, lg.disabled = [], True, False
    logs.configure("debug", fmt)
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)
        for name, (kept, propagate, disabled) in saved.items():
            uvicorn[name].handlers[:], uvicorn[name].propagate, uvicorn[name].disabled = kept, propagate, disabled
