"""Sphinx configuration of the neural_sk documentation.

Build it with ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are errors).
The gallery examples in ``docs/examples`` run during the build. With the environment
variable ``NEURAL_SK_DOCS_QUICK=1`` they run on even smaller settings (fewer studies,
fewer epochs): this is what the test suite and CI use. Nothing is downloaded: no
intersphinx inventories, no model hub.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# The examples run tiny models, for which PyTorch's intra-op threads only add overhead; on a
# busy machine they cost far more (greedy report generation measured 45x slower with two
# threads than with one on a loaded 2-core machine). Set before torch is first imported; an
# explicit OMP_NUM_THREADS in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# The package is normally installed (``pip install -e .``); a checkout without an install
# still builds when its root is on the path.
if (ROOT / "neural_sk").is_dir():
    sys.path.insert(0, str(ROOT))

import neural_sk  # noqa: E402

QUICK = os.environ.get("NEURAL_SK_DOCS_QUICK", "").strip().lower() not in ("", "0", "false", "no")
# The examples run in this process and pick their sizes with a plain
# ``os.environ.get("NEURAL_SK_DOCS_QUICK")`` (in a block hidden from the rendered page), so
# normalise the variable here: set ("1") in quick mode, absent otherwise ("0" means off).
if QUICK:
    os.environ["NEURAL_SK_DOCS_QUICK"] = "1"
else:
    os.environ.pop("NEURAL_SK_DOCS_QUICK", None)

# Examples and autodoc import the library in this process: stay quiet and offline.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# -- Project --------------------------------------------------------------------------
project = "neural_sk"
author = "the neural_sk developers"
copyright = "the neural_sk developers"
release = neural_sk.__version__
version = ".".join(release.split(".")[:2])

# -- General --------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "examples/README.rst"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "py:obj"
pygments_style = "sphinx"

# -- autodoc / autosummary / numpydoc -------------------------------------------------
# Stubs go to docs/generated/ (git-ignored) and are rebuilt on every build.
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's Parameters sections already say the types
autodoc_member_order = "bysource"
# The methods are documented by the class template (``:members:``); numpydoc's own member
# tables would point autosummary at stubs that do not exist.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# -- HTML -----------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"neural_sk {release}"
html_theme_options = {
    "description": "NEURAL (attention-guided pruning of chest X-rays) as scikit-learn estimators",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_static_path: list[str] = []
html_show_sourcelink = False

# -- sphinx-gallery -------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    # Every example is executed at build time (plot_*.py); a failing example fails the
    # build instead of leaving a silently broken page.
    "filename_pattern": re.escape(os.sep) + "plot_",
    "ignore_pattern": r"__init__\.py",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "min_reported_time": 5,
}


# scikit-learn adds ``set_<method>_request`` methods (metadata routing) to every estimator
# class; their docstrings point into scikit-learn's own documentation (glossary terms,
# labels) that does not exist here. They are scikit-learn's API, not ours: leave them out.
_SKLEARN_GENERATED = re.compile(r"^set_\w+_request$")


def _skip_sklearn_generated(app, what, name, obj, skip, options):
    if _SKLEARN_GENERATED.match(name):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_generated)
