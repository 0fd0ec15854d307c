"""The documentation builds with warnings as errors, and its gallery examples run.

The build runs in a subprocess on a copy of ``docs/`` (so nothing is written into the
checkout), with ``NEURAL_SK_DOCS_QUICK=1``: ``docs/conf.py`` and the examples then use
their smallest settings. Any Sphinx warning (a broken docstring, a dangling reference) or
any failing example fails the test, with Sphinx's messages in the assertion.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
NEEDED = ("sphinx", "numpydoc", "sphinx_gallery")

missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
if missing:
    pytest.skip(f"the docs build needs {missing} (pip install -e '.[docs]')",
                allow_module_level=True)
if not (DOCS / "conf.py").is_file():
    pytest.skip(f"no Sphinx project at {DOCS}", allow_module_level=True)

EXAMPLES = sorted(p.stem for p in (DOCS / "examples").glob("plot_*.py"))


def test_docs_build_with_warnings_as_errors(tmp_path):
    src = tmp_path / "docs"
    # Build outputs of an earlier local build must not leak into this one.
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns(
        "_build", "auto_examples", "generated", "sg_execution_times.rst", "__pycache__"))
    out = tmp_path / "html"
    env = dict(os.environ, NEURAL_SK_DOCS_QUICK="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(src), str(out)],
        capture_output=True, text=True, env=env, timeout=1200,
    )
    assert proc.returncode == 0, (
        f"sphinx -W failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}"
    )

    # The pages a reader opens exist: user guide, API reference, every example.
    for page in ("index.html", "getting_started.html", "user_guide/evaluation.html",
                 "api.html", "generated/neural_sk.AttentionScorer.html",
                 "generated/neural_sk.metrics.lesion_hit_rate.html"):
        assert (out / page).is_file(), page
    assert EXAMPLES, "no gallery examples in docs/examples"
    for name in EXAMPLES:
        assert (out / "auto_examples" / f"{name}.html").is_file(), name
    # The examples were executed, not just copied: their figures exist.
    figures = {p.name for p in (out / "_images").glob("sphx_glr_plot_*_001.png")}
    assert "sphx_glr_plot_1_method_in_pictures_001.png" in figures, sorted(figures)
    # The API page documents the methods, not only the class line.
    scorer_page = (out / "generated" / "neural_sk.AttentionScorer.html").read_text("utf-8")
    for method in ("fit", "transform", "generate_reports"):
        assert f"AttentionScorer.{method}" in scorer_page, method
