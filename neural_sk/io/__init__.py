"""Save and load compressed study archives, without pickle.

An archive is one ``.npz`` file (a ZIP of ``.npy`` arrays, readable with
``numpy.load(path, allow_pickle=False)``) plus a ``meta.json`` member:

- **No code runs when a file is loaded.** Every member is a plain numeric array read with
  ``allow_pickle=False``, or JSON. Graphs are rebuilt from their arrays; nothing is unpickled.
- **Damage is detected.** The metadata holds the SHA-256 of the arrays (``payload_sha256``), and
  the ZIP comment, the file's last bytes, holds the SHA-256 of everything before it, so a single
  flipped byte anywhere in the file raises :class:`ArchiveError` naming the file.
- **The minimum, the rest rebuilt.** What a pure function makes exactly from stored fields is
  not stored (:mod:`~neural_sk.io.derived`): the fused graphs (rebuilt by
  :func:`neural_sk.graphs.fuse_graphs` with the fuser's strategy), the keep mask (from the
  visual graphs' patch ids) and grid positions. Report findings are one small code per node
  into a vocabulary stored once per file (:mod:`~neural_sk.io.categorical`).
- **Compact.** Kept patch features (the graphs' ``x``) are stored at ``feature_dtype``
  (float16 by default; int8 with one scale per study); edges as local node indices in the
  smallest unsigned type (uint8 for up to 256 nodes); integers in the smallest integer type;
  one-hot features and the keep mask as bits. Per-study lists (graphs, strings, token
  attention) are flattened and stored with offsets. Loading restores the original dtypes.
- **Traceable.** The fitted scorer's identity (``StudySet.info``: presets, image size, grid,
  weight hash) is stored, and :func:`check_compatible` refuses to mix features of different
  encoders. :func:`archive_nbytes` gives the bytes of every field, per study, as written;
  :func:`studies_nbytes` the same before writing (the one count of bytes).
- **Viewable (optional).** With ``pixels="png"`` or ``"jpeg"``, the image tiles under the kept
  patches are stored at source resolution; :func:`load_tiles` / :func:`load_sparse_images` (or
  :func:`neural_sk.plotting.show_pruned` with ``tiles=``) rebuild the sparse image.

A folder written by :func:`neural_sk.compress.compress` (shards plus ``manifest.json``) loads
like a single file. :func:`to_arrow` / :func:`export_parquet` give one row per study with list
columns for pandas, DuckDB or Polars (optional ``pyarrow``: ``pip install neural-sk[arrow]``).

Format version 2 (this one) rebuilds the fused graphs and codes the report graphs; version 1
files are still read.

The package's modules, bottom to top: ``errors``; ``format`` (constants, version, the
compatibility check, compact encodings); ``checksums``; ``columns`` (per-study arrays);
``derived`` (what is rebuilt), ``categorical`` (coded node attributes),
``graph_encoder`` / ``graph_decoder`` (graph fields); ``shards`` (one file); ``manifest``
(a folder of shards); ``tiles`` (pixels); ``archive`` (the public functions); ``arrow`` (the export).
"""

from __future__ import annotations

from .archive import (archive_info, archive_nbytes, load_studies, save_studies, studies_nbytes,
                      verify_archive)
from .arrow import export_parquet, to_arrow
from .errors import ArchiveError, IncompatibleArchiveError
from .format import FORMAT_VERSION, MANIFEST_NAME, check_compatible
from .tiles import load_sparse_images, load_tiles

__all__ = [
    "ArchiveError",
    "IncompatibleArchiveError",
    "FORMAT_VERSION",
    "save_studies",
    "load_studies",
    "verify_archive",
    "check_compatible",
    "archive_nbytes",
    "studies_nbytes",
    "archive_info",
    "load_tiles",
    "load_sparse_images",
    "to_arrow",
    "export_parquet",
]

# The public objects report their public home (for pickles, docs and doctests).
for _name in __all__:
    _obj = globals()[_name]
    if callable(_obj):
        _obj.__module__ = __name__
del _name, _obj
