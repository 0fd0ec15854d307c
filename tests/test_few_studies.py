"""Learning from a few hundred studies (issue 17): the rate schedule, epochs chosen from the
number of steps, early stopping on a stratified validation split, and the warning when the
stage-1 head is no better than chance on it."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from neural_sk import AttentionScorer
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.models.optim import (MIN_EPOCHS, MIN_STEPS, build_scheduler, resolve_epochs,
                                    steps_per_epoch, warmup_cosine)
from neural_sk.models.validation import (EarlyStopping, auc_chance_bound, rank_auc,
                                         validation_split)

# Image-only and the whole encoder trained: validation features are then computed exactly as
# predict_proba computes them (no float16 prefix cache), so the kept epoch can be checked.
IMAGE_ONLY = dict(vision_model="tiny-swin", text_model=None, image_size=64, batch_size=8,
                  train_encoder="all", random_state=0)


# -- the schedule -----------------------------------------------------------------------------
def test_warmup_then_cosine_decay_to_zero():
    factors = [warmup_cosine(step, 100, 10) for step in range(101)]
    assert factors[0] < 0.1 and max(factors) == pytest.approx(1.0)
    assert np.all(np.diff(factors[:11]) > 0), "the warm-up rises"
    assert np.all(np.diff(factors[10:]) <= 0), "then the rate only falls"
    assert factors[-1] == pytest.approx(0.0, abs=1e-12)


def test_the_scheduler_moves_every_group_with_its_own_base_rate():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD([{"params": params[:1], "lr": 1.0},
                                 {"params": params[1:], "lr": 0.1}])
    scheduler = build_scheduler(optimizer, total_steps=20)
    rates = []
    for _ in range(20):
        rates.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    rates = np.array(rates)
    np.testing.assert_allclose(rates[:, 1], rates[:, 0] * 0.1)
    assert rates[:, 0].argmax() > 0 and rates[-1, 0] < 0.05
    constant = build_scheduler(torch.optim.SGD(params, lr=0.5), 20, schedule="constant")
    assert constant.get_last_lr() == [0.5]


# -- epochs from the number of steps ----------------------------------------------------------
@pytest.mark.parametrize("n", [20, 144, 160, 480, 5000])
def test_auto_epochs_give_few_studies_enough_steps(n):
    epochs = resolve_epochs("auto", n, batch_size=16)
    assert epochs >= MIN_EPOCHS
    assert epochs * steps_per_epoch(n, 16) >= MIN_STEPS
    # no more than needed: one epoch fewer would fall short (or go below the epoch floor)
    assert epochs == MIN_EPOCHS or (epochs - 1) * steps_per_epoch(n, 16) < MIN_STEPS


def test_auto_classification_weight_follows_the_decoder():
    from neural_sk.models.training import TrainingConfig

    def weight(**params):
        return TrainingConfig.from_params(AttentionScorer(**params).get_params()).classification_weight

    # the tiny from-scratch decoder: 2; the paper's 0.5 beside a local decoder or none
    assert weight() == 2.0 and weight(text_model=None) == 0.5
    assert weight(text_model="/models/clinical-t5") == 0.5
    assert weight(classification_weight=1.5) == 1.5


def test_explicit_epochs_are_kept():
    assert resolve_epochs(3, 160, 16) == 3 and resolve_epochs(0, 10, 4) == 0
    assert steps_per_epoch(160, 16, gradient_accumulation=4) == 3


# -- the validation split and its scores ------------------------------------------------------
def test_validation_split_is_stratified_disjoint_and_seeded():
    targets = torch.tensor([0] * 90 + [1] * 60)
    train, val = validation_split(targets, 0.1, torch.Generator().manual_seed(0))
    assert len(set(train.tolist()) | set(val.tolist())) == 150, "no study is lost"
    assert not set(train.tolist()) & set(val.tolist())
    assert (targets[val] == 1).sum() == 6 and (targets[val] == 0).sum() == 9
    again = validation_split(targets, 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(val, again[1])
    assert validation_split(targets, None, torch.Generator()) is None
    # a class with a single study cannot be on both sides
    assert validation_split(torch.tensor([0, 0, 0, 1]), 0.5, torch.Generator()) is None


def test_rank_auc_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    p = rng.random(50).round(1)  # ties too
    proba = torch.tensor(np.stack([1 - p, p], 1))
    assert rank_auc(proba, torch.tensor(y)) == pytest.approx(roc_auc_score(y, p))
    y3 = rng.integers(0, 3, 60)
    p3 = rng.dirichlet(np.ones(3), 60)
    assert rank_auc(torch.tensor(p3), torch.tensor(y3)) == pytest.approx(
        roc_auc_score(y3, p3, multi_class="ovr", average="macro"))
    assert np.isnan(rank_auc(torch.tensor(p3[:5]), torch.zeros(5, dtype=torch.long)))


def test_the_chance_bound_is_exceeded_by_a_useless_head_about_5_percent_of_the_time():
    rng = np.random.default_rng(0)
    y = torch.tensor([0] * 10 + [1] * 6)
    bound = auc_chance_bound(y)
    aucs = [rank_auc(torch.tensor(rng.random((16, 2))).softmax(-1), y) for _ in range(2000)]
    assert 0.6 < bound < 0.95
    assert 0.02 < np.mean(np.array(aucs) > bound) < 0.08


class _Linear(torch.nn.Module):
    """The one method EarlyStopping calls: ``head(features)`` -> (logits, anything)."""

    def __init__(self):
        super().__init__()
        self.head_layer = torch.nn.Linear(1, 2)

    def head(self, features):
        return self.head_layer(features), None


def test_early_stopping_keeps_and_restores_the_best_epoch():
    x = torch.tensor([[-1.0], [-2.0], [1.0], [2.0]])
    y = torch.tensor([0, 0, 1, 1])
    model = _Linear()
    stopper = EarlyStopping(lambda idx: x[idx], y, n_iter_no_change=2, batch_size=3)
    stops = []
    for epoch, slope in enumerate([0.5, 3.0, -1.0, 0.0]):  # epoch 1 is the best
        with torch.no_grad():
            model.head_layer.weight.copy_(torch.tensor([[-slope], [slope]]))
            model.head_layer.bias.zero_()
        scores, stop = stopper.update(model, epoch)
        stops.append(stop)
        assert set(scores) == {"val_loss", "val_auc"}
    assert stops == [False, False, False, True] and stopper.best_epoch == 1
    assert stopper.best_auc == 1.0
    stopper.restore_best(model)
    assert model.head_layer.weight[1, 0].item() == pytest.approx(3.0)


# -- the scorer -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    return make_synthetic_cxr(40, image_size=64, random_state=0)


@pytest.fixture(scope="module")
def stopped(data):
    X, y = data
    scorer = AttentionScorer(**IMAGE_ONLY, epochs=12, learning_rate=0.05,
                             validation_fraction=0.25, n_iter_no_change=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return scorer.fit(X, y)


def test_early_stopping_stops_and_keeps_the_best_epoch(stopped, data):
    X, y = data
    history = stopped.history_
    assert all("val_loss" in h and "val_auc" in h for h in history)
    losses = [h["val_loss"] for h in history]
    best = int(np.argmin(losses))
    assert len(history) < 12, "a large rate stops improving the validation loss early"
    assert len(history) == best + 1 + 2, "stops n_iter_no_change epochs after the best"
    # The model kept is the best epoch's: its loss on the held-out studies is the best one.
    _, val = validation_split(torch.as_tensor(y), 0.25, torch.Generator().manual_seed(0))
    proba = stopped.predict_proba(X.iloc[val.numpy()])
    assert log_loss(y[val.numpy()], proba, labels=[0, 1]) == pytest.approx(losses[best], rel=1e-4)


def test_auto_epochs_train_few_studies_longer(data, monkeypatch):
    from neural_sk.models import optim

    monkeypatch.setattr(optim, "MIN_STEPS", 12)  # the rule, at a test's size
    monkeypatch.setattr(optim, "MIN_EPOCHS", 2)
    X, y = data
    params = dict(IMAGE_ONLY, batch_size=16, validation_fraction=None)
    epochs = {}
    for n in (20, 40):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            epochs[n] = len(AttentionScorer(**params, epochs="auto").fit(X.iloc[:n], y[:n]).history_)
    # 20 studies in batches of 16 take 2 steps an epoch, 40 take 3: 6 and 4 epochs for 12 steps
    assert epochs == {20: 6, 40: 4}


def _bright_or_dark(n: int, flip_labels: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Images whose label is their brightness (trivial to learn), or labels at random."""
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], n // 2)
    images = [np.full((64, 64), 60 + 120 * label, np.uint8) + rng.integers(0, 20, (64, 64),
                                                                           dtype=np.uint8)
              for label in y]
    if flip_labels:
        y = rng.permutation(y)
    return pd.DataFrame({"image": images}), y


@pytest.mark.parametrize("noise", [True, False])
def test_a_head_at_chance_on_its_validation_split_is_reported(noise):
    X, y = _bright_or_dark(48, flip_labels=noise)
    scorer = AttentionScorer(**IMAGE_ONLY, epochs=4, learning_rate=1e-2,
                             validation_fraction=0.25)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scorer.fit(X, y)
    messages = [str(w.message) for w in caught if "no better than chance" in str(w.message)]
    if noise:
        assert len(messages) == 1 and "on 12 held-out studies" in messages[0]
    else:
        assert messages == [] and max(h["val_auc"] for h in scorer.history_) == 1.0


def test_early_stopping_can_select_on_the_auc():
    x = torch.tensor([[-1.0], [-2.0], [1.0], [2.0]])
    y = torch.tensor([0, 0, 1, 1])
    # epoch 0 ranks perfectly but is confidently wrong (a large bias): AUC 1, high loss;
    # epoch 1 ranks nothing: AUC 0.5, loss log(2)
    kept = {}
    for metric in ("loss", "auc"):
        model = _Linear()
        stopper = EarlyStopping(lambda idx: x[idx], y, None, batch_size=4, metric=metric)
        for epoch, (slope, bias) in enumerate([(5.0, 20.0), (0.0, 0.0)]):
            with torch.no_grad():
                model.head_layer.weight.copy_(torch.tensor([[-slope], [slope]]))
                model.head_layer.bias.copy_(torch.tensor([bias, -bias]))
            stopper.update(model, epoch)
        kept[metric] = stopper.best_epoch
    assert kept == {"loss": 1, "auc": 0}
