"""GNNClassifier: graph classification of the pruned (and fused) study graphs."""

from __future__ import annotations

import copy
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .graphs import GraphList
from .studies import StudySet
from .utils import resolve_device
from .utils.device import torch_seeded
from .utils.validation import check_seed

if TYPE_CHECKING:  # torch is imported when a model is fitted, not with the package
    from .models.gnn import PackedGraphs

__all__ = ["GNNClassifier"]


def _as_graphs(X: Any) -> GraphList:
    """The graphs of ``X``: a StudySet's ``graphs`` (else ``visual_graphs``) or a list."""
    if isinstance(X, StudySet):
        graphs = X.graphs if X.graphs is not None else X.visual_graphs
        if graphs is None:
            raise ValueError(
                "GNNClassifier needs a StudySet with graphs (GraphFuser) or visual_graphs "
                "(PatchPruner); this one has neither"
            )
        return graphs
    if isinstance(X, (GraphList, list, tuple)):
        return GraphList.from_data(X)
    raise TypeError(
        f"X must be a StudySet or a list of torch_geometric Data, got {type(X).__name__}"
    )


class GNNClassifier(ClassifierMixin, BaseEstimator):
    """Graph neural network classifier of study graphs (one label, or several, per graph).

    The last step of the NEURAL pipeline: classifies each study from its fused graph
    (``StudySet.graphs``), or from its visual graph when there is no fused one. Node
    features are standardised with the mean and standard deviation of the training nodes
    (encoder features and one-hot report features have very different scales).

    Parameters
    ----------
    conv : {"gcn", "sage", "gat", "gin"}, default="gcn"
        Graph convolution (the paper: GCN).
    num_layers : int, default=2
        Convolutions, each followed by ReLU and dropout.
    hidden_dim : int, default=128
        Width of every convolution.
    pooling : {"mean", "max", "add"}, default="mean"
        Global pooling of node vectors into one vector per graph.
    readout : {"joint", "per_modality"}, default="per_modality"
        ``"joint"`` pools all nodes together (the paper's readout). ``"per_modality"``
        pools the visual nodes of a fused graph (``node_type`` 0, with ``pooling``) and
        its report nodes (``node_type`` 1, with max) apart and joins the two vectors, so
        the one finding that matters is not averaged away among the patches and the
        report's other nodes; graphs without ``node_type`` count as visual only. On the
        synthetic held-out split it lifts the fused graph with given reports from 0.980
        to 0.995 AUC and leaves the generated-report figure as it was
        (``benchmarks/bench_fusion_ablation.py``).
    modality_dropout : float in [0, 1), default=0.5
        While training, each graph has with this probability the node features of one
        modality (visual or report nodes of a fused graph, at random) hidden, so the
        classifier cannot fit on one modality alone and ignore the other (graphs with one
        kind of node are left as they are). On the synthetic held-out split it lifts the
        fused graph with given reports from 0.949 to 0.98 AUC and leaves the generated-report
        figure as it was (``benchmarks/bench_fusion_ablation.py``); 0 turns it off.
    dropout : float in [0, 1), default=0.1
    learning_rate : float, default=1e-3
        Adam(W) step size (the paper's 1e-4 needs many more epochs on small data).
    weight_decay : float, default=1e-4
        AdamW's decoupled weight decay.
    epochs : int, default=40
        Passes over the training graphs (fewer with early stopping).
    batch_size : int, default=32
        Graphs per step.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn (multi-label y: None or
        "balanced", per label).
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        Multi-label y: -1 (uncertain) is left out of the loss like NaN, or counts 1 or 0.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training graphs (stratified), stop when
        their loss has not improved for ``n_iter_no_change`` epochs, and keep the weights of
        the best epoch (in memory).
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int, default=10
    standardize : bool, default=True
        Standardise node features with training-node statistics.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, dropout and the validation split: the same seed gives the
        same predictions on CPU. Local generators only: fitting leaves the global
        ``random``, NumPy and torch generators as they were.
    device : str, default="auto"
        ``"auto"`` uses CUDA when present; the fitted estimator pickles to CPU, and
        predicts on the device set when it predicts (``set_params(device="cpu")``).
    verbose : int, default=0
        Show a progress bar over epochs.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted labels; ``0..k-1`` for a multi-label y (scikit-learn's convention, as
        ``MLPClassifier``: then ``predict_proba`` is (n, k), one sigmoid per label, and
        ``predict`` the 0/1 indicator array).
    label_names_ : ndarray of shape (k,) or None
        A multi-label y's column names (``0..k-1`` for an array); None for a 1-D y.
    n_features_in_ : int
        Width of the node features.
    module_ : torch.nn.Module
        The trained :class:`~neural_sk.models.gnn.GraphClassifierNet`.
    x_mean_, x_scale_ : ndarray of shape (n_features,) or None
        Standardisation of the node features.
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_loss_ : list of float
        Validation loss per epoch (early stopping only).
    best_epoch_ : int
        Epoch (1-based) whose weights were kept.
    n_epochs_ : int
        Epochs run.

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> from neural_sk.gnn import GNNClassifier
    >>> graphs = [Data(x=torch.full((3, 2), float(i % 2)),
    ...                edge_index=torch.tensor([[0, 1], [1, 0]])) for i in range(20)]
    >>> y = [i % 2 for i in range(20)]
    >>> clf = GNNClassifier(hidden_dim=8, epochs=20, batch_size=4, random_state=0).fit(graphs, y)
    >>> clf.score(graphs, y)
    1.0
    """

    _parameter_constraints: dict = {
        "conv": [StrOptions({"gcn", "sage", "gat", "gin"})],
        "num_layers": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions({"mean", "max", "add"})],
        "readout": [StrOptions({"joint", "per_modality"})],
        "modality_dropout": [Interval(Real, 0, 1, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "uncertain": [StrOptions({"ignore", "ones", "zeros"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "standardize": ["boolean"],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        conv: str = "gcn",
        num_layers: int = 2,
        hidden_dim: int = 128,
        pooling: str = "mean",
        readout: str = "per_modality",
        modality_dropout: float = 0.5,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 40,
        batch_size: int = 32,
        class_weight: dict | str | None = None,
        uncertain: str = "ignore",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        standardize: bool = True,
        random_state: Any = None,
        device: str = "auto",
        verbose: int = 0,
    ) -> None:
        self.conv = conv
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.pooling = pooling
        self.readout = readout
        self.modality_dropout = modality_dropout
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.class_weight = class_weight
        self.uncertain = uncertain
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.standardize = standardize
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- fitting ----------------------------------------------------------------------------
    def _split(self, y_idx: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation graphs; ``y_idx`` [n, 2, k] (multi-label) is not stratified."""
        ids = np.arange(len(y_idx))
        if not self.early_stopping:
            return ids, ids[:0]
        n_val = max(1, int(round(self.validation_fraction * ids.size)))
        if ids.size - n_val < 1:
            raise ValueError(
                f"early_stopping with validation_fraction={self.validation_fraction} leaves "
                f"no training graphs out of {ids.size}"
            )
        counts = np.bincount(y_idx) if np.ndim(y_idx) == 1 else np.zeros(1, int)
        stratify = y_idx if counts.min() >= 2 and n_val >= counts.size else None
        train, val = train_test_split(ids, test_size=n_val, random_state=seed,
                                      stratify=stratify)
        return np.sort(train), np.sort(val)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = self.device != "cpu"
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GNNClassifier:
        """Train on graphs ``X`` with labels ``y``.

        Parameters
        ----------
        X : StudySet or list of torch_geometric.data.Data
            A StudySet's ``graphs`` are used, else its ``visual_graphs``.
        y : array-like of shape (n_graphs,), or (n_graphs, k) / DataFrame (multi-label)
            Class labels (any hashable, e.g. int or str); multi-label: 1, 0, NaN (unknown,
            never in the loss) or -1 (uncertain, see ``uncertain``) per label.
        sample_weight : array-like of shape (n_graphs,), default=None
            Weight of each graph in the loss and in the node standardisation (a weight of
            2 counts a graph twice). In a Pipeline pass ``gnn__sample_weight=w``, or, with
            metadata routing enabled, request it with ``set_fit_request``.

        Returns
        -------
        self : GNNClassifier
        """
        from .models.gnn import PackedGraphs
        from .models.targets import label_names

        graphs = _as_graphs(X)
        self.label_names_ = label_names(y)
        if self.label_names_ is not None:
            self.classes_, y_idx, weight = self._encode_multilabel(y, len(graphs), sample_weight)
        else:
            y_idx, weight = self._encode_classes(y, len(graphs), sample_weight)
        seed = check_seed(self.random_state)
        device = resolve_device(self.device)
        packed = PackedGraphs(graphs)
        self.n_features_in_ = packed.n_features
        train, val = self._split(y_idx, seed)
        self.x_mean_, self.x_scale_ = (packed.node_statistics(train, weight[train])
                                       if self.standardize else (None, None))
        packed.to(device, self.x_mean_, self.x_scale_)
        with torch_seeded(seed, device):
            self.module_ = self._train(packed, y_idx, weight, train, val,
                                       np.random.default_rng(seed))
        return self

    def _encode_classes(self, y: Any, n: int, sample_weight: Any) -> tuple:
        """``classes_``, the class index of each graph, and the graph weights of a 1-D y."""
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"y has shape {y.shape} but there are {n} graphs")
        if n == 0:
            raise ValueError("GNNClassifier needs at least one training graph")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                f"GNNClassifier needs at least 2 classes in y, got only {self.classes_!r}"
            )
        weight = _check_sample_weight(sample_weight, y, dtype=np.float64,
                                      ensure_non_negative=True)
        if self.class_weight is not None:
            weight = weight * compute_class_weight(self.class_weight, classes=self.classes_,
                                                   y=y)[y_idx]
        return y_idx, weight

    def _encode_multilabel(self, y: Any, n: int, sample_weight: Any) -> tuple:
        """``arange(k)``, the [n, 2, k] targets and mask of a 2-D y, and the graph weights."""
        from .models.targets import encode_targets

        if n == 0:
            raise ValueError("GNNClassifier needs at least one training graph")
        classes, targets, weights = encode_targets(y, sample_weight, n, self.class_weight,
                                                   self.uncertain)
        return classes, targets.numpy(), (np.ones(n) if weights is None
                                          else weights.numpy().astype(np.float64))

    def _train(self, packed: PackedGraphs, y_idx: np.ndarray, weight: np.ndarray,
               train: np.ndarray, val: np.ndarray, rng: np.random.Generator) -> Any:
        """Build the network and run the epochs; returns the module with the kept weights."""
        import torch
        from tqdm.auto import tqdm

        from .models.gnn import GraphClassifierNet

        from .models.losses import masked_bce

        multilabel = np.ndim(y_idx) == 3
        targets = torch.as_tensor(y_idx, dtype=torch.float32 if multilabel else torch.long,
                                  device=packed.device)
        weights = torch.as_tensor(weight, dtype=torch.float32, device=packed.device)

        module = GraphClassifierNet(
            packed.n_features, self.classes_.size, conv=self.conv,
            num_layers=self.num_layers, hidden_dim=self.hidden_dim, pooling=self.pooling,
            readout=self.readout,
            dropout=self.dropout,
        ).to(packed.device)
        optimizer = torch.optim.AdamW(module.parameters(), lr=self.learning_rate,
                                      weight_decay=self.weight_decay)

        def loss_of(logits: Any, ids: np.ndarray) -> Any:
            # Weighted mean, as CrossEntropyLoss(weight=...) takes it for class weights.
            index = torch.as_tensor(ids, device=packed.device)
            w = weights[index]
            if multilabel:  # binary cross-entropy over the known labels only
                return masked_bce(logits, targets[index], w)
            losses = torch.nn.functional.cross_entropy(logits, targets[index],
                                                       reduction="none")
            return (losses * w).sum() / w.sum().clamp_min(1e-12)

        # its own stream, so hiding modalities leaves the shuffling of the batches as it was
        hide_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])
        self.loss_curve_, self.validation_loss_ = [], []
        best_loss, best_state, self.best_epoch_, stale = np.inf, None, 0, 0
        bar = tqdm(range(self.epochs), desc="GNNClassifier", disable=not self.verbose)
        for epoch in bar:
            module.train()
            order = rng.permutation(train)
            total = 0.0
            for start in range(0, order.size, self.batch_size):
                ids = order[start:start + self.batch_size]
                optimizer.zero_grad()
                loss = loss_of(module(*self._hide_modality(packed.batch(ids), hide_rng)), ids)
                loss.backward()
                optimizer.step()
                total += loss.item() * weight[ids].sum()
            self.loss_curve_.append(float(total / max(weight[train].sum(), 1e-12)))
            postfix = {"loss": f"{self.loss_curve_[-1]:.4f}"}
            self.n_epochs_ = epoch + 1
            if val.size:
                val_loss = float(loss_of(self._logits(module, packed, val), val))
                self.validation_loss_.append(val_loss)
                postfix["val_loss"] = f"{val_loss:.4f}"
                if val_loss < best_loss - 1e-6:
                    best_loss, self.best_epoch_, stale = val_loss, epoch + 1, 0
                    best_state = {k: v.detach().clone() for k, v in
                                  module.state_dict().items()}
                else:
                    stale += 1
            bar.set_postfix(postfix)
            if val.size and stale >= self.n_iter_no_change:
                break
        if best_state is not None:
            module.load_state_dict(best_state)
        else:
            self.best_epoch_ = self.n_epochs_
        module.eval()
        return module

    def _hide_modality(self, batch: tuple, rng: np.random.Generator) -> tuple:
        """Training batch with, per graph and with probability ``modality_dropout``, the
        node features of one modality (visual or report, at random) set to the training mean,
        so that neither modality can carry the fit alone."""
        if not self.modality_dropout:
            return batch
        import torch

        x, edge_index, graph, n, node_type = batch
        hide = torch.as_tensor(rng.random(n) < self.modality_dropout, device=x.device)
        which = torch.as_tensor(rng.integers(0, 2, n), device=x.device)
        # only graphs that have both kinds of node: a one-modality graph is never blanked
        n_report = torch.zeros(n, device=x.device).index_add_(0, graph, node_type.float())
        n_nodes = torch.bincount(graph, minlength=n)
        hide &= (n_report > 0) & (n_report < n_nodes)
        nodes = hide[graph] & (node_type == which[graph])
        return x.masked_fill(nodes[:, None], 0.0), edge_index, graph, n, node_type

    # -- prediction -------------------------------------------------------------------------
    def _logits(self, module: Any, packed: PackedGraphs, ids: np.ndarray) -> Any:
        import torch

        was_training = module.training
        module.eval()
        chunk = max(self.batch_size, 256)
        with torch.no_grad():
            out = [module(*packed.batch(ids[s:s + chunk])) for s in range(0, ids.size, chunk)]
        module.train(was_training)
        if not out:
            return torch.zeros((0, self.classes_.size), device=packed.device)
        return torch.cat(out)

    @property
    def _multilabel(self) -> bool:
        return getattr(self, "label_names_", None) is not None

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits per graph: ``(n,)`` log-odds of ``classes_[1]`` for binary problems, else
        ``(n, n_classes)`` (multi-label: one log-odds per label).

        Parameters
        ----------
        X : StudySet or list of torch_geometric.data.Data

        Returns
        -------
        ndarray
        """
        from .models.gnn import PackedGraphs

        check_is_fitted(self, "module_")
        packed = PackedGraphs(_as_graphs(X), self.n_features_in_)
        device = resolve_device(self.device)
        # The device is a parameter like any other: one set after fitting (a model
        # trained on a GPU, predicting on a CPU) is honoured. Module.to moves in place.
        self.module_.to(device)
        packed.to(device, self.x_mean_, self.x_scale_)
        logits = self._logits(self.module_, packed, np.arange(packed.n_graphs))
        logits = logits.detach().cpu().numpy().astype(np.float64)
        if self.classes_.size == 2 and not self._multilabel:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ``(n, n_classes)`` in the order of ``classes_``.

        Parameters
        ----------
        X : StudySet or list of torch_geometric.data.Data

        Returns
        -------
        ndarray of shape (n, n_classes)
            Multi-label: the probability of each label, ``(n, k)`` (rows need not sum to 1).
        """
        scores = self.decision_function(X)
        if self._multilabel:
            return 1.0 / (1.0 + np.exp(-scores))
        if scores.ndim == 1:
            scores = np.stack([np.zeros_like(scores), scores], axis=1)
        scores = scores - scores.max(axis=1, keepdims=True)
        proba = np.exp(scores)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class label of each graph.

        Parameters
        ----------
        X : StudySet or list of torch_geometric.data.Data

        Returns
        -------
        ndarray of shape (n,)
            Multi-label: the 0/1 indicator array ``(n, k)`` (probability above 0.5).
        """
        proba = self.predict_proba(X)  # checks the fit first
        if self._multilabel:
            return (proba > 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    # -- pickling ---------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        module = state.get("module_")
        if module is not None and any(p.device.type != "cpu" for p in module.parameters()):
            # A fitted estimator must load on a machine without a GPU.
            state["module_"] = copy.deepcopy(module).to("cpu")
        return state
