"""What the peak-memory benchmarks share: studies written as PNG files, one measured run per
fresh subprocess, and the process's resident memory read from ``/proc``.

Used by ``bench_fit_memory.py`` and ``bench_compress_memory.py`` (``from _memory import ...``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

__all__ = ["CHILD_ENV", "peak_rss_mib", "reset_peak_rss", "rss_mib", "run_child",
           "write_png_studies"]

CHUNK = 500  # studies generated at a time, so the parent stays small too
# One thread everywhere: the child's memory, not the machine's load, is measured.
CHILD_ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                 TOKENIZERS_PARALLELISM="false")


def rss_mib(field: str = "VmRSS") -> float | None:
    """A memory field of ``/proc/self/status`` in MiB (None where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the high-water mark so a warm-up does not count; False where Linux does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib(since_reset: bool) -> float:
    """Peak resident memory in MiB: since :func:`reset_peak_rss` when it worked, else of the
    whole process."""
    peak = rss_mib("VmHWM") if since_reset else None
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(cmd: list[str], what: str) -> dict:
    """Run one measured child process; its last stdout line is its JSON result."""
    done = subprocess.run(cmd, capture_output=True, text=True, env=CHILD_ENV, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the run on {what} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_png_studies(folder: Path, n: int, image_size: int, *, relative: bool) -> Path:
    """``n`` synthetic studies as PNG files plus ``studies.csv`` (image, report, label,
    study_id); image paths relative to the CSV's folder or absolute."""
    import pandas as pd
    from PIL import Image

    from neural_sk.datasets import make_synthetic_cxr

    (folder / "images").mkdir(parents=True, exist_ok=True)
    csv = folder / "studies.csv"
    for chunk, start in enumerate(range(0, n, CHUNK)):
        X, y = make_synthetic_cxr(min(CHUNK, n - start), image_size=image_size,
                                  random_state=chunk)
        rows = []
        for j, (image, report, label) in enumerate(zip(X["image"], X["report"], y)):
            rel = f"images/{start + j:06d}.png"
            Image.fromarray(image).save(folder / rel)
            rows.append({"image": rel if relative else str(folder / rel), "report": report,
                         "label": int(label), "study_id": f"s{start + j:06d}"})
        pd.DataFrame(rows).to_csv(csv, mode="w" if start == 0 else "a", header=start == 0,
                                  index=False)
    return csv
