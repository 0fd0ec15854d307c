"""The fitted model of a compress run: its transform steps, set to record per-study errors."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..studies import StudySet, concat_study_sets
from .errors import CompressError

__all__ = ["Chain", "load_model", "run_batch"]

# Exceptions that say the machine or the model is broken, not one study: they stop the run.
_FATAL = (MemoryError, RuntimeError, KeyboardInterrupt, SystemExit)


class Chain:
    """The transform steps of a fitted model, set to record (not raise) per-study errors."""

    def __init__(self, steps: list) -> None:
        self.steps = steps

    @property
    def info(self) -> dict | None:
        for step in self.steps:
            info = getattr(step, "info_", None)
            if info is not None:
                return dict(info)
        return None

    def transform(self, X: pd.DataFrame) -> StudySet:
        out: Any = X
        for step in self.steps:
            out = step.transform(out)
        if not isinstance(out, StudySet):
            raise TypeError(f"the model's last transform step returned {type(out).__name__}, "
                            "not a StudySet")
        return out


def load_model(model: Any, *, device: str | None = None) -> tuple[Chain, dict]:
    """Resolve ``model`` (a joblib path or a fitted object) into its chain of transformers.

    ``device`` (when given) replaces the device of every step that has one. Each step's
    device is checked here, so a model saved for a GPU stops the run before any shard is
    written, on a machine without one, instead of failing every study.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    from ..utils.device import resolve_device

    described: dict[str, Any] = {"type": None}
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"model file {str(model)!r} does not exist")
        import joblib

        described["path"] = str(path.resolve())
        model = joblib.load(path)
    described["type"] = type(model).__name__
    if isinstance(model, Pipeline):
        steps = [est for _, est in model.steps if est not in (None, "passthrough")]
        if steps and hasattr(steps[-1], "predict"):
            steps = steps[:-1]  # the classifier: the archive keeps what it would consume
    elif hasattr(model, "transform"):
        steps = [model]
    else:
        raise TypeError(f"model must be a fitted Pipeline or transformer (or a joblib file of "
                        f"one), got {type(model).__name__}")
    if not steps:
        raise ValueError("the model has no transform step before its classifier")
    chain = []
    for step in steps:
        check_is_fitted(step)
        step = copy.copy(step)  # shallow: shares the fitted weights, not the caller's params
        params = step.get_params(deep=False) if hasattr(step, "get_params") else {}
        if "on_error" in params:
            step.set_params(on_error="skip")
        if "verbose" in params:
            step.set_params(verbose=0)  # one progress bar, ours
        if "device" in params:
            if device is not None:
                step.set_params(device=device)
            try:
                resolve_device(step.get_params(deep=False)["device"])
            except ValueError as exc:
                raise CompressError(f"the model's {type(step).__name__} cannot run here: {exc}; "
                                    "choose another device (--device cpu)") from None
        chain.append(step)
    described["steps"] = [type(s).__name__ for s in chain]
    return Chain(chain), described


def run_batch(chain: Chain, part: pd.DataFrame) -> tuple[StudySet | None, list]:
    """Transform a batch; returns (the studies that worked, a reason or None per row).

    A batch that raises is split into single studies, so one bad study never costs the
    others; the exception of a single study is its reason.
    """
    try:
        studies = chain.transform(part)
    except _FATAL:
        raise
    except Exception as exc:
        if len(part) == 1:
            return None, [f"{type(exc).__name__}: {exc}"]
        kept, reasons = [], []
        for j in range(len(part)):
            one, why = run_batch(chain, part.iloc[j:j + 1])
            reasons.extend(why)
            if one is not None:
                kept.append(one)
        return (concat_study_sets(kept) if kept else None), reasons
    if len(studies) != len(part):
        raise CompressError(f"the model returned {len(studies)} studies for {len(part)} rows "
                            f"(rows {part.index[0]!r}..{part.index[-1]!r}); a step dropped "
                            "studies")
    reasons = list(studies.errors) if studies.errors is not None else [None] * len(part)
    ok = np.array([r is None for r in reasons], dtype=bool)
    if not ok.any():
        return None, reasons
    return (studies if ok.all() else studies[ok]), reasons
