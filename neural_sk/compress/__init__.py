"""``neural-sk compress``: turn an archive of studies into shards of small graphs, exactly once.

:func:`compress` streams the studies of a CSV, a DataFrame or an image folder through a fitted
model (every step of a :func:`~neural_sk.make_neural_pipeline` pipeline except the final
classifier, or a fitted :class:`~neural_sk.AttentionScorer`), batch by batch, and writes:

- shards ``shard-000000.npz``, ``shard-000001.npz`` ... (:func:`neural_sk.io.save_studies`
  files: no pickle, checksummed), shard ``k`` holding input rows
  ``[k * shard_size, (k + 1) * shard_size)``; each is written to a temporary file and renamed;
- ``manifest.json`` (also written atomically): the source of truth. It lists every finished
  shard with its rows, file, study ids and digest, and every study that could not be processed
  with the reason (``on_error="skip"``).

Peak memory holds one batch of images and one shard of kept graphs, whatever the archive's
size. After an interruption (even ``kill -9``), ``resume=True`` skips the shards the manifest
lists and recomputes the others, so every study ends up exactly once: in one shard, or in the
manifest's ``failed`` list. A shard file that the manifest does not list is rewritten.

With ``client=`` (a ``dask.distributed.Client``) the shards are computed on a Dask cluster: the
workers write the shard files (the output folder must be visible to them), the driver alone
writes the manifest, so the exactly-once rule is the same.

Model files are loaded with joblib (that is, pickle): load only models you trust. The archives
written here never need pickle to be read.

The package's modules: ``errors``; ``source`` (the input rows, a shard at a time); ``model``
(the fitted steps, a batch at a time); ``shard`` (one shard's rows to one archive file);
``job`` (the output folder, the loop over shards, the command line). The archive format,
the manifest included, is :mod:`neural_sk.io`'s.
"""

from __future__ import annotations

from .errors import CompressError
from .job import compress, run_compress_cli

__all__ = ["CompressError", "compress", "run_compress_cli"]

# The public objects report their public home (for pickles and docs).
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
