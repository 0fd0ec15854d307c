"""The demo's experiment code, which benchmarks/bench_rate_accuracy.py shares."""

import numpy as np
import pytest
from sklearn.base import clone

from neural_sk.demo import DemoSettings, demo_pipeline, held_out_auc, held_out_split, visual_only
from neural_sk.pruning import PatchPruner
from neural_sk.testing import make_check_data


def test_held_out_split_keeps_each_patient_on_one_side():
    split = held_out_split(40, image_size=64, test_size=0.4, random_state=0)
    assert len(split.X_train) + len(split.X_test) == 40
    assert not set(split.X_train["patient_id"]) & set(split.X_test["patient_id"])
    assert len(split.masks_test) == len(split.y_test) == len(split.X_test)


@pytest.fixture(scope="module")
def scored():
    """Scored studies as the scorer returns them (random attention, 4 x 4 grid)."""
    return make_check_data(PatchPruner(), n_samples=16)


def test_every_row_is_the_pipeline_with_other_parameters(scored):
    X, y = scored
    settings = DemoSettings(keep_ratio=0.25, gnn_epochs=2)
    head = demo_pipeline(settings)[1:]
    fused = clone(head).fit(X, y)
    auc, graphs = held_out_auc(fused, X, y)
    assert 0.0 <= auc <= 1.0
    assert graphs.graphs is not None and len(graphs.graphs) == len(X)

    visual = visual_only(fused).fit(X, y)
    assert fused.get_params()["fuser"] != "passthrough"  # the copy leaves the original as is
    _, visual_graphs = held_out_auc(visual, X, y)
    assert visual_graphs.graphs is None and visual_graphs.report_graphs is None
    np.testing.assert_array_equal(visual_graphs.keep_mask, graphs.keep_mask)

    control = clone(visual).set_params(pruner__rank_by="random", pruner__random_state=0)
    _, random_graphs = held_out_auc(control.fit(X, y), X, y)
    np.testing.assert_array_equal(random_graphs.keep_mask.sum(1), graphs.keep_mask.sum(1))
    assert not np.array_equal(random_graphs.keep_mask, graphs.keep_mask)
