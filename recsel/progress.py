"""Progress that fits where it runs: a live tqdm bar in a terminal, plain lines elsewhere.

In CI logs, TFX and Vertex logs or behind ``| tee``, a tqdm bar writes carriage-return
frames that pile up into one line of thousands of characters. ``Progress`` therefore
checks whether its stream is a terminal: if it is, it is a tqdm bar; if not, it writes
one plain line (no ``\\r``) through the ``recsel.progress`` logger each time another
10% of the work is done or 30 s have passed since the last line, and a final line. In a
Jupyter notebook it is tqdm's widget.

Example:
    >>> with Progress(200, "round 1/3", unit="step") as bar:
    ...     for _ in range(200):
    ...         bar.update()
    ...         bar.set_postfix(loss="0.4312")
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

_LOG = logging.getLogger("recsel.progress")


class Progress:
    """A progress reporter for ``total`` units of work.

    Args:
        total: Units of work (steps, models).
        desc: What is being done, e.g. ``"round 1/3"``.
        unit: Name of one unit.
        enabled: False makes every method a no-op.
        stream: The stream a bar would draw on (default ``sys.stderr``); its ``isatty()``
            picks the mode.
        every_fraction: Plain mode: a line after each such share of ``total``.
        every_seconds: Plain mode: a line when this long has passed since the last one.
        leave: TTY mode: keep the finished bar on screen.

    Example:
        >>> bar = Progress(10, "export", unit="model", stream=io.StringIO())
        >>> bar.update(10); bar.close()
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "step",
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        every_fraction: float = 0.1,
        every_seconds: float = 30.0,
        leave: bool = False,
    ) -> None:
        self.total, self.desc, self.unit, self.enabled = max(0, int(total)), desc, unit, enabled
        self.done = 0
        self._postfix: dict[str, Any] = {}
        self._every = max(1, int(self.total * every_fraction)) if self.total else 1
        self._every_seconds = every_seconds
        self._last_done, self._last_time = 0, time.monotonic()
        self._started = self._last_time
        self._closed = False
        stream = sys.stderr if stream is None else stream
        self._bar = None
        if enabled and (_isatty(stream) or _notebook(stream)):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit, leave=leave, file=stream)

    @property
    def live(self) -> bool:
        """True when drawing a tqdm bar (a terminal), False for plain lines or disabled."""
        return self._bar is not None

    def update(self, n: int = 1) -> None:
        """Records ``n`` more units done."""
        if not self.enabled:
            return
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if (
            self.done - self._last_done >= self._every
            or now - self._last_time >= self._every_seconds
        ) and self.done < self.total:
            self._line(now)

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the count (e.g. ``loss``); plain mode shows them on its next line."""
        if not self.enabled:
            return
        self._postfix = values
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def close(self) -> None:
        """Ends the bar; plain mode writes a last line with the elapsed time."""
        if not self.enabled or self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        else:
            self._line(time.monotonic(), final=True)

    def _line(self, now: float, final: bool = False) -> None:
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        extra = "".join(f", {k} {v}" for k, v in self._postfix.items())
        took = f" in {now - self._started:.1f} s" if final else ""
        _LOG.info(
            "%s: %d/%d %ss%s%s%s", self.desc, self.done, self.total, self.unit, share, extra, took
        )
        self._last_done, self._last_time = self.done, now

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _notebook(stream: IO[str]) -> bool:
    """A Jupyter kernel's output stream: tqdm.auto draws a widget there, not ``\\r`` frames."""
    return type(stream).__module__.startswith("ipykernel")


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-like stream without isatty
        return False
