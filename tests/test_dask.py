"""A cached keep-ratio sweep on a Dask cluster gives the local results, fitting the scorer once per fold.

Users who outgrow one machine run GridSearchCV on their own Dask cluster through
``joblib.parallel_config(backend="dask")``. This test runs that on a LocalCluster of two
worker *processes* (so the estimators really are pickled to other interpreters), and checks
what a user relies on: the same scores as a local ``n_jobs=1`` sweep, and the pipeline cache
(``make_neural_pipeline(memory=...)``) shared by the workers, so the expensive scorer is
fitted once per fold however many keep ratios are tried.

Fits are counted in a file (the workers are separate processes): a subclass of
AttentionScorer appends one line per ``fit`` (process id, fingerprint of the training rows)
to the file named by an environment variable, which the spawned workers inherit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
joblib = pytest.importorskip("joblib")

from sklearn.model_selection import GridSearchCV, GroupKFold  # noqa: E402

from neural_sk import AttentionScorer, make_neural_pipeline  # noqa: E402
from neural_sk.datasets import make_synthetic_cxr  # noqa: E402

FIT_LOG = "NEURAL_SK_TEST_SCORER_FIT_LOG"
N_FOLDS = 2
KEEP_RATIOS = [0.1, 0.25, 0.5]


class CountingScorer(AttentionScorer):
    """AttentionScorer that records every fit (process id, training rows) in a file."""

    def fit(self, X, y=None):
        path = os.environ.get(FIT_LOG)
        if path:
            rows = hashlib.sha1(",".join(map(str, X.index)).encode()).hexdigest()[:12]
            with open(path, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()} {rows}\n")
        return super().fit(X, y)


def _fits(log: Path) -> list[tuple[int, str]]:
    """(pid, training-rows fingerprint) of every scorer fit recorded so far."""
    if not log.exists():
        return []
    fits = []
    for line in log.read_text().splitlines():
        pid, rows = line.split()
        fits.append((int(pid), rows))
    return fits


@pytest.fixture(scope="module")
def fit_log(tmp_path_factory):
    return tmp_path_factory.mktemp("fits") / "scorer_fits.log"


@pytest.fixture(scope="module")
def dask_client(request, fit_log):
    """A LocalCluster of 2 single-threaded worker processes, closed when the module ends."""
    from dask.distributed import Client, LocalCluster

    # Set before the workers are spawned: they inherit the environment.
    previous = os.environ.get(FIT_LOG)
    os.environ[FIT_LOG] = str(fit_log)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    client = Client(cluster)

    def close():
        client.close()
        cluster.close()
        if previous is None:
            os.environ.pop(FIT_LOG, None)
        else:
            os.environ[FIT_LOG] = previous

    request.addfinalizer(close)
    return client


@pytest.fixture(scope="module")
def data():
    X, y = make_synthetic_cxr(24, image_size=64, random_state=0)
    return X, y


def _search(memory) -> GridSearchCV:
    pipe = make_neural_pipeline(
        memory=str(memory),
        gnn__epochs=3, gnn__hidden_dim=8, gnn__random_state=0, gnn__device="cpu",
    )
    pipe.set_params(scorer=CountingScorer(vision_model="tiny-swin", image_size=64, epochs=1,
                                          random_state=0, device="cpu"))
    return GridSearchCV(pipe, {"pruner__keep_ratio": KEEP_RATIOS}, scoring="roc_auc",
                        cv=GroupKFold(n_splits=N_FOLDS), refit=False, error_score="raise")


def test_cached_sweep_on_local_cluster(dask_client, fit_log, data, tmp_path):
    X, y = data
    groups = X["patient_id"]
    me = os.getpid()

    local = _search(tmp_path / "cache_local")
    local.fit(X, y, groups=groups)
    local_folds = [rows for pid, rows in _fits(fit_log) if pid == me]
    assert len(local_folds) == len(set(local_folds)) == N_FOLDS  # once per fold, locally

    # On the cluster, as the docs say: X and y scattered to every worker (else the tasks
    # crowd on the worker holding the data), and the shared cache warmed with one keep
    # ratio first, so the folds fit their scorers in parallel and the full sweep only reads
    # them. Without the warm-up two workers can start the same fold at once and both fit its
    # scorer (joblib.Memory has no lock): slower, never wrong.
    cache = tmp_path / "cache_dask"
    with joblib.parallel_config(backend="dask", scatter=[X, y]):
        warm = _search(cache).set_params(param_grid={"pruner__keep_ratio": KEEP_RATIOS[:1]})
        warm.fit(X, y, groups=groups)
        remote = _search(cache)
        remote.fit(X, y, groups=groups)

    worker_fits = [(pid, rows) for pid, rows in _fits(fit_log) if pid != me]
    workers = set(dask_client.run(os.getpid).values())
    # Every scorer fit of the cluster sweeps ran on a worker, exactly once per fold.
    assert {pid for pid, _ in worker_fits} <= workers
    assert sorted(rows for _, rows in worker_fits) == sorted(local_folds)

    # Same scores as the local sweep, split by split.
    for key in [f"split{k}_test_score" for k in range(N_FOLDS)] + ["mean_test_score"]:
        np.testing.assert_allclose(remote.cv_results_[key], local.cv_results_[key],
                                   rtol=0, atol=1e-9, err_msg=key)
    assert [p["pruner__keep_ratio"] for p in remote.cv_results_["params"]] == KEEP_RATIOS
