"""Result figures: AUC against bytes per study, and localisation beside chance."""

from __future__ import annotations

from typing import Any

import numpy as np

from .axes import axes_or_new

__all__ = ["plot_rate_accuracy", "plot_localization"]


def _records(results: Any) -> list[dict[str, Any]]:
    if hasattr(results, "to_dict"):
        return list(results.to_dict(orient="records"))
    return [dict(r) for r in results]


def _point_label(row: dict[str, Any]) -> str | None:
    for key, fmt in (("label", "{}"), ("keep_ratio", "keep {:g}"), ("quality", "q{:g}")):
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            try:
                return fmt.format(value)
            except (TypeError, ValueError):
                return str(value)
    return None


def plot_rate_accuracy(
    results: Any,
    *,
    ax: Any = None,
    x: str = "bytes_per_study",
    y: str = "auc",
    annotate: bool = True,
) -> Any:
    """AUC against bytes per study (log scale), one line per method.

    Parameters
    ----------
    results : DataFrame or list of dict
        One row per point with keys ``method``, ``bytes_per_study`` and ``auc``; optional
        ``label``, ``keep_ratio`` or ``quality`` annotate the points (first found), and
        ``auc_std`` draws error bars. A method with one point (e.g. the uncompressed
        classifier) is drawn as a single marker.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    x, y : str, default="bytes_per_study", "auc"
        Column names.
    annotate : bool, default=True
        Write each point's label beside it.

    Returns
    -------
    matplotlib.axes.Axes
        One line per method (``ax.get_lines()``), labelled with the method.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> rows = [{"method": "jpeg", "bytes_per_study": 900, "auc": 0.8, "quality": 10},
    ...         {"method": "jpeg", "bytes_per_study": 2500, "auc": 0.9, "quality": 50},
    ...         {"method": "neural", "bytes_per_study": 300, "auc": 0.85, "keep_ratio": 0.023}]
    >>> ax = plot_rate_accuracy(rows)
    >>> [line.get_label() for line in ax.get_lines()]
    ['jpeg', 'neural']
    """
    rows = _records(results)
    for i, row in enumerate(rows):
        missing = [k for k in ("method", x, y) if k not in row]
        if missing:
            raise ValueError(f"results row {i} is missing {missing}")
    ax = axes_or_new(ax)
    methods: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        methods.setdefault(str(row["method"]), []).append(row)
    for method, points in methods.items():
        points = sorted(points, key=lambda r: float(r[x]))
        xs = np.array([float(r[x]) for r in points])
        ys = np.array([float(r[y]) for r in points])
        (line,) = ax.plot(xs, ys, marker="o", label=method)
        err = [r.get(f"{y}_std") for r in points]
        if all(e is not None and np.isfinite(e) for e in err):
            ax.errorbar(xs, ys, yerr=np.array(err, dtype=float), fmt="none",
                        ecolor=line.get_color(), capsize=2)
        if annotate:
            for xv, yv, row in zip(xs, ys, points):
                label = _point_label(row)
                if label:
                    ax.annotate(label, (xv, yv), xytext=(3, 3), textcoords="offset points",
                                fontsize=7, color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("bytes per study" if x == "bytes_per_study" else x)
    ax.set_ylabel(y.upper() if y == "auc" else y)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_localization(results: Any, *, ax: Any = None) -> Any:
    """Localisation scores as bars with their chance level marked.

    Parameters
    ----------
    results : DataFrame or list of dict
        One row per bar with keys ``method``, ``metric`` (e.g. "hit@1", "top-5% hit"),
        ``value`` and optional ``chance``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        One bar container per metric; chance levels are black tick marks.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> rows = [{"method": "mil", "metric": "hit@1", "value": 0.9, "chance": 0.06},
    ...         {"method": "cross_attention", "metric": "hit@1", "value": 0.1, "chance": 0.06}]
    >>> ax = plot_localization(rows)
    >>> len(ax.patches)
    2
    """
    rows = _records(results)
    ax = axes_or_new(ax)
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    metrics = list(dict.fromkeys(str(r["metric"]) for r in rows))
    width = 0.8 / max(len(metrics), 1)
    centres = np.arange(len(methods), dtype=float)
    for j, metric in enumerate(metrics):
        xs, vals, chance = [], [], []
        for r in rows:
            if str(r["metric"]) != metric:
                continue
            offset = (j - (len(metrics) - 1) / 2) * width
            xs.append(centres[methods.index(str(r["method"]))] + offset)
            vals.append(float(r["value"]))
            chance.append(float(r.get("chance", np.nan)) if r.get("chance") is not None else np.nan)
        ax.bar(xs, vals, width=width * 0.9, label=metric)
        ok = np.isfinite(chance)
        if ok.any():
            ax.hlines(np.array(chance)[ok], np.array(xs)[ok] - width * 0.45,
                      np.array(xs)[ok] + width * 0.45, colors="k", linewidths=2)
    ax.set_xticks(centres)
    ax.set_xticklabels(methods, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of positive studies")
    ax.legend(fontsize=8, title="black: chance", title_fontsize=7)
    return ax
