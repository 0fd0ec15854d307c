"""The input of a compress run: rows of a CSV, an image folder or a DataFrame, one shard at a
time, and the study ids and image names the manifest records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import CompressError

__all__ = ["Source", "study_ids", "json_scalar", "image_name"]

_REQUIRED = ("image", "report")


class Source:
    """Rows of the input, one shard-aligned chunk at a time."""

    def __init__(self, source: Any) -> None:
        self.frame: pd.DataFrame | None = None
        self.csv: Path | None = None
        if isinstance(source, pd.DataFrame):
            self.frame = source
            self.describe = "<DataFrame>"
            columns = list(source.columns)
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.is_dir():
                from ..datasets.folder import load_image_folder

                self.frame, _ = load_image_folder(path)
                columns = list(self.frame.columns)
            elif path.is_file():
                self.csv = path
                try:
                    columns = list(pd.read_csv(path, nrows=0).columns)
                except Exception as exc:
                    raise ValueError(f"cannot read the input CSV {str(path)!r}: {exc}") from exc
            else:
                raise FileNotFoundError(f"input {str(source)!r} does not exist")
            self.describe = str(path.resolve())
        else:
            raise TypeError("input must be a CSV path, a folder of images or a DataFrame, got "
                            f"{type(source).__name__}")
        missing = [c for c in _REQUIRED if c not in columns]
        if missing:
            raise ValueError(f"input {self.describe} is missing column(s) {missing}; it has "
                             f"{columns} (a CSV needs 'image' paths and 'report' text)")

    def count(self) -> int:
        if self.frame is not None:
            return len(self.frame)
        return sum(len(c) for c in pd.read_csv(self.csv, usecols=["image"], chunksize=65536))

    def chunks(self, shard_size: int) -> Iterator[tuple[int, int, pd.DataFrame]]:
        """(shard index, first row, rows) for each shard, in order."""
        if self.frame is not None:
            for k, start in enumerate(range(0, len(self.frame), shard_size)):
                yield k, start, self.frame.iloc[start:start + shard_size]
            return
        folder = self.csv.parent
        dtypes = {"image": str, "report": str, "study_id": str}
        reader = pd.read_csv(self.csv, chunksize=shard_size, dtype=dtypes)
        start = 0
        for k, chunk in enumerate(reader):
            # Relative image paths are relative to the CSV's folder.
            chunk = chunk.copy()
            chunk["image"] = [p if not isinstance(p, str) or os.path.isabs(p)
                              else os.path.join(folder, p) for p in chunk["image"]]
            yield k, start, chunk
            start += len(chunk)


def study_ids(chunk: pd.DataFrame, start: int) -> list:
    if "study_id" not in chunk.columns:
        return list(range(start, start + len(chunk)))
    ids = []
    for j, value in enumerate(chunk["study_id"]):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
            raise CompressError(f"study_id of row {start + j} is empty; every study needs an id "
                                "(or drop the study_id column to use row numbers)")
        ids.append(json_scalar(value))
    return ids


def json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return str(value)


def image_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, np.ndarray):
        return f"<array {source.shape} {source.dtype}>"
    return f"<{type(source).__name__}>"
