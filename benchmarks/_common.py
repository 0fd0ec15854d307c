"""What the benchmark scripts share: the held-out synthetic split, the AUC, JSON output.

The split and the AUC are the demo's (:mod:`neural_sk.demo`), so a benchmark and
``neural-sk demo`` measure the same thing. Scripts run as ``python benchmarks/<script>.py``,
which puts this folder on ``sys.path``: ``from _common import ...``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from neural_sk.demo import HeldOutSplit, held_out_split, roc_auc

__all__ = ["HeldOutSplit", "held_out_split", "roc_auc", "machine", "command", "emit"]


def machine() -> str:
    """The machine a result was measured on: processor, Python, CPU count, GPU if any."""
    text = (f"{platform.machine()} {platform.python_implementation()} "
            f"{platform.python_version()}, {os.cpu_count()} CPUs")
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return text


def command(argv: list[str] | None = None) -> str:
    """The command line that produced a result, as a person would type it again."""
    script = Path(sys.argv[0])
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"benchmarks/{script.name}", *args])


def emit(name: str, result: dict[str, Any], *, argv: list[str] | None = None,
         out: str | Path | None = None) -> dict[str, Any]:
    """Add the benchmark's name, machine and command, print one JSON line, write it to ``out``.

    ``out`` is a ``.json`` file or a folder (then ``<name>.json`` inside it).
    """
    result = {"benchmark": name, **result, "machine": machine(), "command": command(argv)}
    print(json.dumps(result))
    if out is not None:
        path = Path(out)
        if path.suffix != ".json":
            path.mkdir(parents=True, exist_ok=True)
            path = path / f"{name}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
    return result
