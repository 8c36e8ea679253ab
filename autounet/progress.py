"""Progress output with one rule: an animated bar when stderr is a terminal, plain lines when it is a log file.

tqdm redraws its bar with carriage returns, which a terminal turns into one line that moves; in a log file
(``autounet run ... 2> run.log``, a SLURM job) every redraw stays, so a log fills with thousands of frames. Every
progress display of autounet goes through :func:`progress_bar`, so the choice is made here once:

- stderr is a terminal: a tqdm bar, as before;
- otherwise: one line per stage when it ends (``preprocess: 484/484 cases, 312.4 s``), plus one line at most every
  :data:`PLAIN_LINE_INTERVAL_SECONDS` while a long stage runs; the trainer prints one line per epoch
  (:func:`epoch_line`). Bars of sub-steps (the tiles of one image, the iterations of one epoch) print nothing;
- ``progress=False`` (``--no-progress``): nothing, in both cases.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, TypeVar

from tqdm import tqdm  # type: ignore[import-untyped]

T = TypeVar("T")

#: Seconds between two plain lines of a stage that is still running (a sign of life in a cluster job's log
#: without flooding it: a one-hour stage writes about 60 lines).
PLAIN_LINE_INTERVAL_SECONDS = 60.0


def is_terminal(stream: IO[str] | None) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, a closed or missing stream).

    Parameters
    ----------
    stream : file object or None
        Usually ``sys.stderr``, where progress goes.
    """
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or closed
        return False


class Progress:
    """Progress of one stage over ``total`` items, shown as :mod:`autounet.progress` decides (see the module).

    Parameters
    ----------
    total : int
        Number of items (cases, tiles, iterations).
    description : str
        Name of the stage, the start of its bar or line (``"preprocess"``).
    unit : str
        Name of one item, singular (``"case"``).
    enabled : bool
        False shows nothing (``--no-progress``).
    detail : bool
        A sub-step of a larger stage (the tiles of one image): a bar on a terminal, nothing in a log file.
    stream : file object, optional
        Where to write; default ``sys.stderr`` (looked up when the progress starts, so redirections apply).
    leave : bool
        Keep the finished bar on a terminal (the last stage of a command); a log file gets its line either way.
    """

    def __init__(
        self,
        total: int,
        description: str,
        unit: str = "case",
        enabled: bool = True,
        detail: bool = False,
        stream: IO[str] | None = None,
        leave: bool = False,
    ) -> None:
        self.total = int(total)
        self.description = description
        self.unit = unit
        self.count = 0
        self._stream = stream if stream is not None else sys.stderr
        terminal = is_terminal(self._stream)
        self.mode = "off" if not enabled else "bar" if terminal else "off" if detail else "lines"
        self._bar: Any = None
        if self.mode == "bar":
            self._bar = tqdm(total=self.total, desc=description, unit=unit, leave=leave, file=self._stream,
                             dynamic_ncols=True)
        self._started = time.monotonic()
        self._last_line = self._started
        self._closed = False

    def update(self, count: int = 1) -> None:
        """Count ``count`` more items done."""
        self.count += count
        if self._bar is not None:
            self._bar.update(count)
        elif self.mode == "lines" and self.count < self.total:
            now = time.monotonic()
            if now - self._last_line >= PLAIN_LINE_INTERVAL_SECONDS:
                self._last_line = now
                self._write(self._status())

    def set_postfix(self, **values: Any) -> None:
        """Numbers shown after the bar on a terminal (the running loss); a log file gets them per epoch instead."""
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def close(self) -> None:
        """End the stage: the bar disappears on a terminal, a log file gets the stage's closing line."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "lines":
            self._write(self._status())

    def _status(self) -> str:
        unit = self.unit if self.total == 1 else f"{self.unit}s"
        return f"{self.description}: {self.count}/{self.total} {unit}, {time.monotonic() - self._started:.1f} s"

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def progress_bar(
    total: int,
    description: str,
    unit: str = "case",
    enabled: bool = True,
    detail: bool = False,
    stream: IO[str] | None = None,
    leave: bool = False,
) -> Progress:
    """Start showing the progress of a stage; use it as a context manager (or call ``close``).

    Parameters
    ----------
    total, description, unit, enabled, detail, stream, leave
        See :class:`Progress`.

    Examples
    --------
    >>> import io
    >>> log = io.StringIO()
    >>> with progress_bar(2, "evaluate", stream=log) as progress:
    ...     progress.update(2)
    >>> log.getvalue().startswith("evaluate: 2/2 cases, ")
    True
    """
    return Progress(total, description, unit=unit, enabled=enabled, detail=detail, stream=stream, leave=leave)


def track(items: Iterable[T], total: int, description: str, unit: str = "case", enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while showing their progress (closed when the loop ends or breaks).

    Parameters
    ----------
    items : iterable
    total : int
        Number of items.
    description, unit, enabled
        See :class:`Progress`.
    """
    with progress_bar(total, description, unit=unit, enabled=enabled) as progress:
        for item in items:
            yield item
            progress.update()


def write_line(line: str, enabled: bool = True, stream: IO[str] | None = None) -> None:
    """Write one progress line when the output is a log file (a terminal shows bars instead).

    Parameters
    ----------
    line : str
        The text, without a newline.
    enabled : bool
        False writes nothing (``--no-progress``).
    stream : file object, optional
        Default ``sys.stderr``.
    """
    stream = stream if stream is not None else sys.stderr
    if enabled and stream is not None and not is_terminal(stream):
        stream.write(line + "\n")
        stream.flush()


def epoch_line(record: Mapping[str, Any], total_epochs: int, label: str = "") -> str:
    """One line with the numbers of a finished epoch, as it goes to a log file.

    Parameters
    ----------
    record : mapping
        The trainer's epoch record: ``epoch`` (counted from 0), ``train_loss``, ``lr``, ``epoch_seconds`` and, when
        the epoch was validated, ``val_loss``, ``dice_per_label`` (label name -> pseudo Dice) and ``ema_dice``.
    total_epochs : int
        Epochs in the schedule (it may change when a time budget refits it).
    label : str
        What is trained (``"3d_fullres fold 0"``), so the lines of several folds in one log can be told apart.

    Examples
    --------
    >>> epoch_line({"epoch": 0, "train_loss": 0.9, "lr": 0.01, "epoch_seconds": 3.21,
    ...             "dice_per_label": {"organ": 0.5}, "ema_dice": 0.5}, 4)
    'epoch 1/4: train loss 0.9000, pseudo Dice 0.5000 (EMA 0.5000), lr 0.01000, 3.2 s'
    """
    parts = [f"train loss {_number(record.get('train_loss'))}"]
    if record.get("val_loss") is not None:
        parts.append(f"val loss {_number(record['val_loss'])}")
    dice = record.get("dice_per_label") or {}
    if dice:
        ema = record.get("ema_dice")
        smoothed = f" (EMA {_number(ema)})" if ema is not None else ""
        parts.append("pseudo Dice " + " / ".join(_number(value) for value in dice.values()) + smoothed)
    parts.append(f"lr {float(record.get('lr', math.nan)):.5f}")
    parts.append(f"{float(record.get('epoch_seconds', math.nan)):.1f} s")
    prefix = f"{label}, " if label else ""
    return f"{prefix}epoch {int(record['epoch']) + 1}/{total_epochs}: " + ", ".join(parts)


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"
