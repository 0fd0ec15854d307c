"""Plotting: the figures draw what they claim (the pixel helpers are tested in test_patches)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from PIL import Image  # noqa: E402
from torch_geometric.data import Data  # noqa: E402

from neural_sk.plotting import (  # noqa: E402
    extract_tiles,
    plot_attention_overlay,
    plot_graph,
    plot_localization,
    plot_rate_accuracy,
    prune_image,
    show_pruned,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def study():
    """A 37 x 50 image (not divisible by its 4 x 6 grid) with a few kept patches."""
    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, (37, 50), dtype=np.uint8)  # no zero pixel: blanks are visible
    keep = np.zeros(24, dtype=bool)
    keep[[0, 7, 13, 23]] = True
    return image, keep, (4, 6)


# -- figures ---------------------------------------------------------------------------
def test_show_pruned_image_and_outlines(study):
    image, keep, grid = study
    ax = show_pruned(image, keep, grid)
    assert isinstance(ax, Axes)
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(shown, prune_image(image, keep, grid))
    outlines = ax.collections[-1]
    assert len(outlines.get_paths()) == keep.sum()


def test_show_pruned_from_tiles_matches_original(study):
    image, keep, grid = study
    tiles, index = extract_tiles(image, keep, grid)
    fig, axes = plt.subplots(1, 2)
    show_pruned(image, keep, grid, ax=axes[0])
    ax = show_pruned(None, None, grid, ax=axes[1], tiles=tiles, patch_index=index,
                     image_shape=image.shape)
    assert ax is axes[1]
    np.testing.assert_array_equal(np.asarray(axes[0].images[0].get_array()),
                                  np.asarray(axes[1].images[0].get_array()))
    with pytest.raises(ValueError, match="patch_index"):
        show_pruned(None, None, grid, tiles=tiles)


def test_figures_read_image_files_as_8bit_grey(study, tmp_path):
    image, keep, grid = study
    path = tmp_path / "study.png"
    Image.fromarray(image).save(path)
    ax = show_pruned(str(path), keep, grid)
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()),
                                  prune_image(image, keep, grid))
    ax = plot_attention_overlay(path, np.ones(24) / 24, grid)
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), image)


def test_attention_overlay(study):
    image, _, grid = study
    attention = np.zeros(24)
    attention[13] = 1.0
    mask = np.zeros(image.shape, dtype=bool)
    mask[20:25, 20:30] = True
    fig, ax = plt.subplots()
    out = plot_attention_overlay(image, attention, grid, ax=ax, mask=mask, alpha=0.4)
    assert out is ax
    assert len(ax.images) == 2
    heat = np.asarray(ax.images[1].get_array())
    assert heat.shape == image.shape
    hot_cell = prune_image(np.ones_like(image), attention > 0, grid) > 0
    np.testing.assert_array_equal(heat > 0, hot_cell)
    assert ax.images[1].get_alpha() == 0.4
    assert len(ax.collections) >= 1  # the lesion contour
    with pytest.raises(ValueError, match="attention"):
        plot_attention_overlay(image, np.zeros(25), grid)


def test_plot_graph_fused():
    # 3 visual nodes in a row, 2 report nodes; undirected edges stored both ways.
    pairs = [(0, 1), (1, 2), (3, 4), (2, 3)]
    src = [a for a, b in pairs] + [b for a, b in pairs]
    dst = [b for a, b in pairs] + [a for a, b in pairs]
    g = Data(
        x=torch.zeros(5, 4),
        edge_index=torch.tensor([src, dst]),
        node_type=torch.tensor([0, 0, 0, 1, 1]),
        pos=torch.tensor([[2.0, 1.0], [2.0, 2.0], [2.0, 3.0]]),
        node_names=["pneumonia", "right lower lobe"],
    )
    ax = plot_graph(g, grid_shape=(6, 6))
    assert len(ax.collections[0].get_segments()) == len(pairs)
    visual, report = ax.collections[1], ax.collections[2]
    np.testing.assert_array_equal(visual.get_offsets(), [[1, 2], [2, 2], [3, 2]])  # (col, row)
    assert len(report.get_offsets()) == 2
    assert np.all(np.asarray(report.get_offsets())[:, 0] > 5)  # column right of the grid
    texts = {t.get_text() for t in ax.texts}
    assert {"pneumonia", "right lower lobe"} <= texts


def test_plot_graph_report_only_and_visual_only():
    report = Data(x=torch.zeros(3, 2), edge_index=torch.tensor([[0, 1], [1, 0]]),
                  node_names=["a", "b", "c"])
    ax = plot_graph(report)
    assert len(ax.collections[1].get_offsets()) == 3
    visual = Data(x=torch.zeros(2, 2), edge_index=torch.zeros(2, 0, dtype=torch.long),
                  pos=torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    ax = plot_graph(visual)
    assert len(ax.collections[0].get_segments()) == 0
    assert len(ax.collections[1].get_offsets()) == 2


@pytest.fixture(scope="module")
def report_graph():
    from neural_sk import ReportGraphBuilder

    text = ("Right lower lobe consolidation with atelectasis. Possible pneumonia. "
            "No pneumothorax.")
    return ReportGraphBuilder().fit().transform([text]).report_graphs[0]


def _groups(ax):
    """Legend label -> names of the report nodes drawn in that scatter."""
    out = {}
    for scatter in ax.collections[1:]:
        xy = [tuple(p) for p in np.asarray(scatter.get_offsets())]
        out[scatter.get_label()] = {t.get_text() for t in ax.texts if tuple(t.xy) in xy}
    return out


def test_plot_graph_draws_each_finding_by_its_status(report_graph):
    # ReportGraphBuilder writes node_status (-1 for anatomy); plot_graph reads it.
    ax = plot_graph(report_graph)
    assert _groups(ax) == {"present": {"consolidation", "atelectasis"},
                           "absent": {"pneumothorax"}, "uncertain": {"pneumonia"},
                           "anatomy": {"right-lower-lobe"}}
    styles = {c.get_label(): (tuple(c.get_facecolor()[0]), c.get_paths()[0].vertices.tobytes())
              for c in ax.collections[1:]}
    assert len(set(styles.values())) == len(styles)  # colour and marker differ per group


def test_plot_graph_fused_with_status_over_every_node(report_graph):
    m = report_graph.num_nodes
    fused = Data(x=torch.zeros(2 + m, 2),
                 edge_index=torch.cat([torch.tensor([[0, 1, 1, 3], [1, 0, 3, 1]]),
                                       report_graph.edge_index + 2], dim=1),
                 node_type=torch.tensor([0, 0] + [1] * m),
                 pos=torch.cat([torch.tensor([[0.0, 0.0], [0.0, 1.0]]),
                                torch.full((m, 2), float("nan"))]),
                 node_names=report_graph.node_names,
                 node_status=torch.cat([torch.tensor([-1, -1]), report_graph.node_status]))
    fig, ax = plt.subplots(figsize=(4, 3))
    plot_graph(fused, ax=ax, grid_shape=(2, 2))  # more report nodes than grid rows
    fig.canvas.draw()
    boxes = sorted((t.get_window_extent() for t in ax.texts), key=lambda b: b.y0)
    assert len(boxes) == m
    assert all(a.y1 <= b.y0 + 0.5 for a, b in zip(boxes, boxes[1:]))  # names do not overlap
    assert ax.collections[1].get_label() == "image patch"
    assert len(ax.collections[1].get_offsets()) == 2
    assert _groups(ax)["present"] == {"consolidation", "atelectasis"}
    assert _groups(ax)["anatomy"] == {"right-lower-lobe"}


def test_plot_graph_report_edges_are_distinct_arcs_and_anatomy_links_stand_out(report_graph):
    ax = plot_graph(report_graph)
    column = np.asarray(ax.collections[1].get_offsets())[0, 0]
    paths = ax.collections[0].get_segments()
    pairs = np.unique(np.sort(report_graph.edge_index.numpy().T, axis=1), axis=0)
    assert len(paths) == len(pairs) >= 3
    for path in paths:
        # an arc leaving the column, on the side away from the labels
        assert len(path) > 2 and path[:, 0].min() < column - 0.1
        assert path[:, 0].max() <= column + 1e-9
    assert len({p.tobytes() for p in paths}) == len(paths)
    colours = [tuple(c) for c in ax.collections[0].get_colors()]
    status = report_graph.node_status.numpy()
    located = (status[pairs] == -1).any(axis=1)
    assert located.any() and (~located).any()
    assert {colours[i] for i in np.flatnonzero(located)}.isdisjoint(
        colours[i] for i in np.flatnonzero(~located))


def test_plot_graph_legend_covers_nothing(report_graph):
    m = report_graph.num_nodes
    edges = torch.cat([torch.tensor([[0, 1, 2], [1, 2, 3]]), report_graph.edge_index + 3], dim=1)
    fused = Data(x=torch.zeros(3 + m, 2), edge_index=edges,
                 node_type=torch.tensor([0, 0, 0] + [1] * m),
                 pos=torch.tensor([[13.0, 0.0], [13.0, 1.0], [12.0, 13.0]]),
                 node_names=report_graph.node_names,
                 node_status=report_graph.node_status)  # of the report nodes only
    fig, ax = plt.subplots(figsize=(5, 4))
    plot_graph(fused, ax=ax, grid_shape=(14, 14))
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent())
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"image patch", "present", "absent", "uncertain", "anatomy", "image grid",
            "image-report link", "co-occurrence", "located-at"} <= labels
    box = ax.get_window_extent()
    for text in ax.texts:  # the node names fit inside the Axes
        assert text.get_window_extent().x1 <= box.x1 + 1, text.get_text()


def test_plot_rate_accuracy_lines_per_method():
    df = pd.DataFrame([
        {"method": "jpeg", "bytes_per_study": 5000, "auc": 0.9, "quality": 50},
        {"method": "jpeg", "bytes_per_study": 1000, "auc": 0.8, "quality": 10},
        {"method": "neural", "bytes_per_study": 300, "auc": 0.85, "keep_ratio": 0.023},
        {"method": "uncompressed", "bytes_per_study": 40000, "auc": 0.95},
    ])
    ax = plot_rate_accuracy(df)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"jpeg", "neural", "uncompressed"}
    np.testing.assert_array_equal(lines["jpeg"].get_xdata(), [1000, 5000])  # sorted by bytes
    np.testing.assert_array_equal(lines["jpeg"].get_ydata(), [0.8, 0.9])
    assert ax.get_xscale() == "log"
    assert {"q10", "q50", "keep 0.023"} <= {t.get_text() for t in ax.texts}
    with pytest.raises(ValueError, match="row 0"):
        plot_rate_accuracy([{"method": "x", "auc": 0.5}])


def test_plot_localization_bars():
    rows = [
        {"method": "mil", "metric": "hit@1", "value": 0.9, "chance": 0.06},
        {"method": "mil", "metric": "top-5%", "value": 1.0, "chance": 0.45},
        {"method": "cross_attention", "metric": "hit@1", "value": 0.1, "chance": 0.06},
    ]
    ax = plot_localization(rows)
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == [0.1, 0.9, 1.0]
