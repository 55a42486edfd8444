"""Running history of logged scalars, averaged over the last ``n`` iterations (mmcv's ``LogBuffer``)."""
from __future__ import annotations

from collections import OrderedDict


class LogBuffer:
    """Per-key history of ``(value, count)`` pairs and the latest averaged ``output``.

    ``update(vars, count)`` appends every scalar with weight ``count`` (the number of
    images it was computed on); ``average(n)`` writes the count-weighted mean of the
    last ``n`` entries of every key into ``output`` (insertion order kept) and sets
    ``ready``. Loggers read ``output`` and then call ``clear_output()``.
    """

    def __init__(self):
        self.val_history: "OrderedDict[str, list[float]]" = OrderedDict()
        self.n_history: "OrderedDict[str, list[int]]" = OrderedDict()
        self.output: "OrderedDict[str, object]" = OrderedDict()
        self.ready = False

    def clear(self) -> None:
        self.val_history.clear()
        self.n_history.clear()
        self.clear_output()

    def clear_output(self) -> None:
        self.output.clear()
        self.ready = False

    def update(self, vars: dict, count: int = 1) -> None:
        if not isinstance(vars, dict):
            raise TypeError(f"LogBuffer.update expects a dict of scalars, got {type(vars).__name__}")
        for key, value in vars.items():
            self.val_history.setdefault(key, []).append(float(value))
            self.n_history.setdefault(key, []).append(count)

    def average(self, n: int = 0) -> None:
        """Weighted mean of the last ``n`` entries of every key (all entries when ``n == 0``)."""
        if n < 0:
            raise ValueError(f"LogBuffer.average needs n >= 0, got {n}")
        for key, values in self.val_history.items():
            vals, counts = values[-n:], self.n_history[key][-n:]
            self.output[key] = sum(v * c for v, c in zip(vals, counts)) / sum(counts)
        self.ready = True
