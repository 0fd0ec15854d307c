"""The Axes a figure draws on: the one given, or a new figure's."""

from __future__ import annotations

from typing import Any

__all__ = ["axes_or_new"]


def axes_or_new(ax: Any = None) -> Any:
    """Return ``ax``, or the Axes of a new figure when it is None.

    Parameters
    ----------
    ax : matplotlib Axes, default=None
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax`` itself, or a new one.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = axes_or_new()
    >>> axes_or_new(ax) is ax
    True
    """
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    return ax
