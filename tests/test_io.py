"""The archive format: round trips, compact types, checksums, no pickle, scorer identity."""

import hashlib
import io
import json
import os
import pickle
import re
import subprocess
import sys
import warnings
import zipfile

import joblib
import numpy as np
import pytest
import torch

from neural_sk import StudySet
from neural_sk.studies import concat_study_sets
from neural_sk import io as nio
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.graphs import GraphList
from neural_sk.io.checksums import TRAILER_LEN, TRAILER_PREFIX
from neural_sk.io import (ArchiveError, IncompatibleArchiveError, archive_nbytes,
                          check_compatible, load_sparse_images, load_studies, load_tiles,
                          save_studies)
from neural_sk.plotting import prune_image

N = 12


@pytest.fixture(scope="module")
def data():
    return make_synthetic_cxr(N, image_size=64, random_state=0)


@pytest.fixture(scope="module")
def studies(tiny_pipeline_path, data):
    pipe = joblib.load(tiny_pipeline_path)
    return pipe[:-1].transform(data[0])


@pytest.fixture(scope="module")
def saved(tmp_path_factory, studies):
    path = tmp_path_factory.mktemp("io") / "studies.npz"
    save_studies(path, studies)
    return path


def _assert_graphs_equal(originals, loaded, *, x_dtype=torch.float16):
    assert len(originals) == len(loaded)
    for g0, g1 in zip(originals, loaded):
        assert set(g0.keys()) == set(g1.keys())
        for key in g0.keys():
            a, b = g0[key], g1[key]
            if not torch.is_tensor(a):
                assert a == b, key
                continue
            assert a.dtype == b.dtype and a.shape == b.shape, key
            if key == "x":  # features are stored at the archive's dtype
                a = a.to(x_dtype).to(a.dtype)
            assert torch.equal(torch.nan_to_num(a, nan=-1.0), torch.nan_to_num(b, nan=-1.0)), key


def test_round_trip_gives_back_the_studies(studies, saved):
    back = load_studies(saved)
    assert len(back) == len(studies)
    np.testing.assert_array_equal(back.ids, studies.ids)
    assert back.reports == studies.reports
    np.testing.assert_array_equal(back.attention, studies.attention)
    assert back.attention.dtype == np.float32
    np.testing.assert_array_equal(back.keep_mask, studies.keep_mask)
    assert back.grid_shape == studies.grid_shape
    assert back.info == studies.info and back.info["model_hash"]
    for field in ("visual_graphs", "report_graphs", "graphs"):
        _assert_graphs_equal(getattr(studies, field), getattr(back, field))
    # What the archive drops: the features of the pruned patches.
    assert back.patch_features is None


def test_graphs_come_back_as_graph_lists_whatever_went_in(studies, saved, tmp_path):
    # The report graphs may arrive as a list of Data: they are stored the same way.
    as_lists = studies.replace(**{f: list(getattr(studies, f))
                                  for f in ("visual_graphs", "report_graphs", "graphs")})
    path = tmp_path / "lists.npz"
    save_studies(path, as_lists)
    assert path.read_bytes() == saved.read_bytes()
    back = load_studies(path)
    for field in ("visual_graphs", "report_graphs", "graphs"):
        graphs = getattr(back, field)
        assert isinstance(graphs, GraphList), field
        _assert_graphs_equal(getattr(studies, field), graphs)
    # The flat arrays are whole (one block per attribute), not one array per graph.
    x, ptr = back.visual_graphs.flat("x")
    assert ptr[-1] == len(x) == sum(g.num_nodes for g in studies.visual_graphs)


def test_kept_patch_features_are_float16_by_default(studies, saved):
    back = load_studies(saved)
    for i, graph in enumerate(back.visual_graphs):
        kept = studies.patch_features[i][studies.keep_mask[i]]
        d = kept.shape[1]  # the pruner may append the attention after the features
        np.testing.assert_array_equal(graph.x.numpy()[:, :d],
                                      kept.astype(np.float16).astype(np.float32))
    # Plain NumPy reads the archive too: features in float16, edges as uint8 local indices.
    with np.load(saved, allow_pickle=False) as npz:
        assert npz["visual_graphs/x"].dtype == np.float16
        assert npz["visual_graphs/edge_index"].dtype == np.uint8
        assert npz["visual_graphs/patch_id"].dtype == np.uint8
        # Grid positions follow from the patch ids: rebuilt on load, not stored.
        assert "visual_graphs/pos" not in npz.files


def test_float32_round_trip_is_exact_and_float16_halves_the_features(studies, saved, tmp_path):
    path = tmp_path / "f32.npz"
    save_studies(path, studies, feature_dtype="float32")
    back = load_studies(path)
    _assert_graphs_equal(studies.visual_graphs, back.visual_graphs, x_dtype=torch.float32)
    f16 = archive_nbytes(saved)["fields"]["visual_graphs"]
    f32 = archive_nbytes(path)["fields"]["visual_graphs"]
    n_values = sum(g.x.numel() for g in studies.visual_graphs)
    assert f32 - f16 == 2 * n_values


def test_fields_can_be_chosen(studies, tmp_path):
    path = tmp_path / "s.npz"
    save_studies(path, studies, fields=["visual_graphs", "patch_features"])
    back = load_studies(path)
    assert back.fields == ["ids", "patch_features", "visual_graphs", "grid_shape", "info"]
    np.testing.assert_array_equal(back.patch_features,
                                  studies.patch_features.astype(np.float16).astype(np.float32))
    assert load_studies(path, fields=["patch_features"]).visual_graphs is None
    with pytest.raises(ValueError, match="token_attention"):
        save_studies(tmp_path / "t.npz", studies, fields=["token_attention"])


def test_ragged_and_optional_fields_round_trip(tmp_path):
    from torch_geometric.data import Data

    att = np.full((3, 4), 0.25, np.float32)
    token_att = [np.full((t, 4), 0.25, np.float32) for t in (2, 0, 5)]
    token_off = [np.arange(2 * t, dtype=np.int64).reshape(t, 2) for t in (2, 0, 5)]
    graphs = [Data(x=torch.ones(0, 3), edge_index=torch.zeros(2, 0, dtype=torch.long),
                   node_names=[]),
              Data(x=torch.randn(2, 3), edge_index=torch.tensor([[0, 1], [1, 0]]),
                   node_names=["pneumonia", "émphysème"]),
              Data(x=torch.randn(1, 3), edge_index=torch.zeros(2, 0, dtype=torch.long),
                   node_names=["a"])]
    s = StudySet(ids=np.array([7, 8, 9]), reports=["", "two words", "üñí"], attention=att,
                 token_attention=token_att, token_offsets=token_off,
                 errors=[None, "row 8: unreadable", None], report_graphs=graphs,
                 grid_shape=(2, 2))
    path = tmp_path / "r.npz"
    save_studies(path, s, feature_dtype="float32")
    back = load_studies(path)
    assert back.ids.dtype.kind == "i" and back.ids.tolist() == [7, 8, 9]
    assert back.reports == s.reports and back.errors == s.errors
    for a, b in zip(token_att + token_off, back.token_attention + back.token_offsets):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    _assert_graphs_equal(graphs, back.report_graphs, x_dtype=torch.float32)


def test_empty_study_set_round_trips(tmp_path):
    path = tmp_path / "empty.npz"
    save_studies(path, StudySet(reports=[], attention=np.zeros((0, 4), np.float32),
                                grid_shape=(2, 2)))
    back = load_studies(path)
    assert len(back) == 0 and back.attention.shape == (0, 4) and back.grid_shape == (2, 2)


def test_same_studies_give_the_same_bytes(studies, saved, tmp_path):
    path = tmp_path / "again.npz"
    save_studies(path, studies)
    assert path.read_bytes() == saved.read_bytes()


@pytest.mark.parametrize("where", [0, 0.1, 0.5, 0.9, -1])
def test_a_flipped_byte_is_detected(saved, tmp_path, where):
    data = bytearray(saved.read_bytes())
    pos = len(data) - 1 if where == -1 else int(where * len(data))
    data[pos] ^= 0x01
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="damaged.npz"):
        load_studies(damaged)


def test_a_truncated_file_is_detected(saved, tmp_path):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="cut.npz"):
        load_studies(cut)
    with pytest.raises(FileNotFoundError):
        load_studies(tmp_path / "absent.npz")


def test_loading_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used while loading an archive")

    calls = []
    real_load = np.load

    def spy_load(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(np, "load", spy_load)
    back = load_studies(saved)
    assert len(back) == N and back.graphs is not None
    # Members are read by the bounded reader, not np.load; if np.load runs, never with pickle.
    assert all(flag is False for flag in calls)


class _Boom:
    triggered = False

    def __reduce__(self):
        return (_Boom._trigger, ())

    @staticmethod
    def _trigger():
        _Boom.triggered = True
        return "boom"


def _rewrite_member(src, dst, name, data):
    """Copy an archive replacing one member, with a valid checksum trailer (a forged file)."""
    out = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, data if info.filename == name else zin.read(info))
        zout.comment = TRAILER_PREFIX + b"0" * 64
    raw = out.getvalue()
    body = raw[: len(raw) - TRAILER_LEN]
    dst.write_bytes(body + TRAILER_PREFIX + hashlib.sha256(body).hexdigest().encode())


def test_a_forged_pickle_inside_a_valid_file_is_never_run(saved, tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.array([_Boom()], dtype=object), allow_pickle=True)
    forged = tmp_path / "forged.npz"
    _rewrite_member(saved, forged, "reports.npy", buf.getvalue())
    with pytest.raises(ArchiveError, match="forged.npz"):
        load_studies(forged)
    assert not _Boom.triggered


def test_a_newer_format_version_is_refused(saved, tmp_path):
    with zipfile.ZipFile(saved) as z:
        meta = json.loads(z.read("meta.json"))
    meta["format_version"] = nio.FORMAT_VERSION + 1
    newer = tmp_path / "newer.npz"
    _rewrite_member(saved, newer, "meta.json", json.dumps(meta).encode())
    with pytest.raises(ArchiveError, match="upgrade neural_sk"):
        load_studies(newer)


def test_features_of_another_scorer_are_never_mixed(studies, saved, tmp_path):
    other_info = dict(studies.info, model_hash="0" * 16)
    other = tmp_path / "other.npz"
    save_studies(other, studies[:3].replace(info=other_info))
    with pytest.raises(IncompatibleArchiveError, match="model_hash"):
        load_studies([saved, other])
    with pytest.raises(IncompatibleArchiveError, match="model_hash"):
        load_studies(saved, info=other_info)
    # The same scorer: files join in order.
    same = tmp_path / "same.npz"
    save_studies(same, studies[:3])
    joined = load_studies([saved, same])
    assert joined.ids.tolist() == studies.ids.tolist() + studies.ids[:3].tolist()
    with pytest.raises(IncompatibleArchiveError, match="image_size: 64 != 128"):
        check_compatible(studies.info, dict(studies.info, image_size=128))
    with pytest.raises(IncompatibleArchiveError, match="no scorer identity"):
        check_compatible(studies.info, None)


def test_bytes_are_accounted_per_study_and_field(studies, saved):
    acc = archive_nbytes(saved)
    assert acc["file_bytes"] == saved.stat().st_size
    assert acc["payload_bytes"] + acc["overhead_bytes"] == acc["file_bytes"]
    table = acc["per_study"]
    assert table.index.tolist() == studies.ids.tolist()
    assert set(table.columns) >= {"ids", "reports", "attention", "visual_graphs", "total"}
    assert acc["fields"]["attention"] == studies.attention.nbytes
    assert (table["attention"] == studies.attention.shape[1] * 4).all()
    assert (table.drop(columns="total").sum(axis=1) == table["total"]).all()
    reports = [len(r.encode()) for r in studies.reports]
    # each report's bytes plus its offset entry
    assert (table["reports"] - np.array(reports)).nunique() == 1


def test_fused_graphs_cost_little_beyond_their_parts(studies, saved):
    # The fused graphs repeat the visual and report features; the archive stores them once.
    fields = archive_nbytes(saved)["fields"]
    assert fields["graphs"] < 0.2 * (fields["visual_graphs"] + fields["report_graphs"])


def test_kept_pixels_can_be_viewed(data, studies, tmp_path):
    X = data[0]
    png = tmp_path / "png.npz"
    save_studies(png, studies, images=list(X["image"]), pixels="png")
    sparse = load_sparse_images(png)
    for i, image in enumerate(X["image"]):
        np.testing.assert_array_equal(sparse[i], prune_image(image, studies.keep_mask[i],
                                                             studies.grid_shape))
    tiles = load_tiles(png)[0]
    assert tiles["tiles"].shape[0] == studies.keep_mask[0].sum()
    jpeg = tmp_path / "jpeg.npz"
    save_studies(jpeg, studies, images=list(X["image"]), pixels="jpeg", jpeg_quality=90)
    rebuilt = load_sparse_images(jpeg)[0].astype(float)
    exact = prune_image(X["image"][0], studies.keep_mask[0], studies.grid_shape).astype(float)
    assert np.abs(rebuilt - exact).mean() < 4
    assert archive_nbytes(png)["fields"]["pixels"] > 0


def test_sixteen_bit_pixels_stay_sixteen_bit(tmp_path):
    image = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    keep = np.zeros((1, 16), bool)
    keep[0, [0, 5]] = True
    path = tmp_path / "p16.npz"
    save_studies(path, StudySet(keep_mask=keep, grid_shape=(4, 4)), images=[image], pixels="png")
    sparse = load_sparse_images(path)[0]
    assert sparse.dtype == np.uint16
    np.testing.assert_array_equal(sparse, prune_image(image, keep[0], (4, 4)))


def test_a_failed_write_leaves_nothing_behind(studies, tmp_path):
    bad = list(studies.visual_graphs[:3])  # a GraphList is read-only: edit a list of Data
    bad[1] = bad[1].clone()
    bad[1].note = object()
    with pytest.raises(TypeError, match=rf"visual_graphs\[1\] \(study '{studies.ids[1]}'\)"):
        save_studies(tmp_path / "bad.npz", studies[:3].replace(visual_graphs=bad))
    with pytest.raises(ValueError, match="pixels='png' needs"):
        save_studies(tmp_path / "bad.npz", studies, pixels="png")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# Hostile archives: every one refused with an ArchiveError naming the file
# --------------------------------------------------------------------------------------
def _small(n=3):
    return StudySet(ids=[f"s{i}" for i in range(n)], reports=[f"report {i}" for i in range(n)],
                    attention=np.full((n, 4), 0.25, np.float32),
                    keep_mask=np.eye(n, 4, dtype=bool), grid_shape=(2, 2))


def _folder(root, files=("shard-000000.npz",), complete=True):
    """A folder archive: one real shard and a manifest listing ``files``."""
    root.mkdir()
    save_studies(root / "shard-000000.npz", _small())
    shards = [{"index": i, "file": f, "ids": [], "failed": [], "bytes": 0}
              for i, f in enumerate(files)]
    (root / "manifest.json").write_text(json.dumps(
        {"format": "neural_sk.manifest", "complete": complete, "shards": shards}))
    return root


def _forge(src, dst, *, meta_edit=None, arrays_edit=None):
    """A lying archive: edited metadata or arrays, every checksum recomputed (no signature)."""
    from neural_sk.io.checksums import payload_digest
    from neural_sk.io.shards import read_shard, write_shard

    meta, arrays = read_shard(src)
    arrays = dict(arrays)
    if arrays_edit:
        arrays_edit(arrays)
        meta["arrays"] = {k: {"dtype": a.dtype.str, "shape": list(a.shape)}
                          for k, a in arrays.items()}
    if meta_edit:
        meta_edit(meta)
    meta["payload_sha256"] = payload_digest(arrays)
    write_shard(dst, arrays, meta, compression=True)
    return dst


def _set(key, value):
    def edit(meta):
        meta[key] = value
    return edit


def _manifest_case(edit):
    def make(tmp_path):
        root = _folder(tmp_path / "arch")
        manifest = json.loads((root / "manifest.json").read_text())
        edit(manifest)
        (root / "manifest.json").write_text(json.dumps(manifest))
        return root, "manifest.json"
    return make


def _traversal(tmp_path):
    save_studies(tmp_path / "outside.npz", _small())  # another patient's studies
    return _folder(tmp_path / "arch", files=["../outside.npz"]), "manifest.json"


def _absolute(tmp_path):
    save_studies(tmp_path / "outside.npz", _small())
    return _folder(tmp_path / "arch", files=[str(tmp_path / "outside.npz")]), "manifest.json"


def _symlink(tmp_path):
    save_studies(tmp_path / "outside.npz", _small())
    root = _folder(tmp_path / "arch", files=["shard-000000.npz", "shard-000001.npz"])
    (root / "shard-000001.npz").symlink_to(tmp_path / "outside.npz")
    return root, "manifest.json"


def _shard_case(meta_edit=None, arrays_edit=None):
    def make(tmp_path):
        save_studies(tmp_path / "good.npz", _small())
        return _forge(tmp_path / "good.npz", tmp_path / "lying.npz", meta_edit=meta_edit,
                      arrays_edit=arrays_edit), "lying.npz"
    return make


def _inflating_meta(meta):
    meta["padding"] = " " * (9 << 20)  # over the 8 MiB cap once inflated


def _huge_array(arrays):
    arrays["attention"] = np.zeros((3, 40_000_000), np.float32)  # 480 MB of zeros


def _lying_offsets(arrays):
    arrays["reports.offsets"] = np.array([0, 5, 3, 2], np.uint8)


HOSTILE = {
    "traversal": _traversal,
    "absolute path": _absolute,
    "symlink leaving the folder": _symlink,
    "manifest shards not a list": _manifest_case(lambda m: m.update(shards="abc")),
    "manifest file not a string": _manifest_case(lambda m: m["shards"][0].update(file=5)),
    "manifest entry not an object": _manifest_case(lambda m: m.update(shards=[5])),
    "manifest without format": _manifest_case(lambda m: m.pop("format")),
    "inflating meta.json": _shard_case(meta_edit=_inflating_meta),
    "inflating member": _shard_case(arrays_edit=_huge_array),
    "n_studies too many": _shard_case(meta_edit=_set("n_studies", 5)),
    "n_studies huge": _shard_case(meta_edit=_set("n_studies", 10**9)),
    "n_studies not a number": _shard_case(meta_edit=_set("n_studies", "abc")),
    "grid shape lies": _shard_case(meta_edit=_set("grid_shape", [3, 3])),
    "grid shape malformed": _shard_case(meta_edit=_set("grid_shape", "abc")),
    "offsets lie": _shard_case(arrays_edit=_lying_offsets),
    "field spec malformed": _shard_case(
        meta_edit=lambda m: m["fields"].update(reports={"kind": "strings"})),
    "field dtype is a huge string": _shard_case(
        meta_edit=lambda m: m["fields"]["attention"].update(dtype="<U100000000")),
    "bit count lies": _shard_case(
        meta_edit=lambda m: m["fields"]["keep_mask"].update(n_patches=4000)),
    "array dtype is object": _shard_case(
        meta_edit=lambda m: m["arrays"]["attention"].update(dtype="|O")),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_archive_is_refused_naming_the_file(case, tmp_path):
    path, name = HOSTILE[case](tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "interrupted run" warning before the refusal
        with pytest.raises(ArchiveError, match=re.escape(name)):
            load_studies(path)


@pytest.mark.parametrize("attrs", [
    {"x": {"kind": "ref", "field": "graphs"}},                      # refers to itself
    {"x": {"kind": "ref", "field": "visual_graphs"}},               # to a reference
    {"node_type": {"kind": "ref", "field": "visual_graphs"}},
])
def test_graph_references_cannot_loop(studies, tmp_path, attrs):
    # Without the report graphs the fused ones cannot be rebuilt: stored attribute by
    # attribute, with references to the visual graphs.
    full = tmp_path / "full.npz"
    save_studies(full, studies, fields=["visual_graphs", "graphs"])
    assert "attrs" in nio.archive_info(full)["fields"]["graphs"]

    def edit(meta):
        meta["fields"]["graphs"]["attrs"].update(attrs)
        meta["fields"]["visual_graphs"]["attrs"]["x"] = {"kind": "ref", "field": "graphs"}
    forged = _forge(full, tmp_path / "loop.npz", meta_edit=edit)
    with pytest.raises(ArchiveError, match="loop.npz"):
        load_studies(forged)


def test_a_listed_shard_reads_the_same_missing_linked_or_foreign(tmp_path):
    (tmp_path / "outside.npz").write_bytes(b"not an archive")
    messages = []
    for target in ("missing", "link to a file", "link to nothing", "not an archive"):
        root = _folder(tmp_path / target.replace(" ", "_"),
                       files=["shard-000000.npz", "shard-000001.npz"])
        shard = root / "shard-000001.npz"
        if target == "link to a file":
            shard.symlink_to(tmp_path / "outside.npz")
        elif target == "link to nothing":
            shard.symlink_to(tmp_path / "absent.npz")
        elif target == "not an archive":
            shard.write_bytes(b"not an archive")
        with pytest.raises(ArchiveError) as err:
            load_studies(root)
        messages.append(str(err.value).replace(str(root), "<root>"))
    assert len(set(messages)) == 1, messages


def test_an_oversized_manifest_is_refused(tmp_path, monkeypatch):
    from neural_sk.io import manifest as manifest_module

    root = _folder(tmp_path / "arch")
    monkeypatch.setattr(manifest_module, "MANIFEST_MAX_BYTES", 16)
    with pytest.raises(ArchiveError, match="manifest.json"):
        load_studies(root)


_MEMORY_SCRIPT = """
import sys
from neural_sk.io import ArchiveError, load_studies
def rss_mib(field):  # VmHWM: this process's own peak (ru_maxrss may carry the parent's)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
before = rss_mib("VmRSS")
for path in sys.argv[1:]:
    try:
        load_studies(path)
    except ArchiveError:
        pass
    else:
        raise SystemExit("accepted " + path)
print(before, rss_mib("VmHWM"))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_inflating_archives_are_refused_in_bounded_memory(tmp_path):
    # Members that inflate to 200 MB (meta.json, and an array the metadata agrees with):
    # each file is a few hundred kB, and is refused from its declared sizes alone.
    meta_bomb = _shard_case(meta_edit=lambda m: m.update(padding=" " * (200 << 20)))
    array_bomb = _shard_case(arrays_edit=lambda a: a.update(
        attention=np.zeros((3, 17_000_000), np.float32)))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = [str(meta_bomb(tmp_path / "a")[0]), str(array_bomb(tmp_path / "b")[0])]
    assert all(os.path.getsize(p) < 8 << 20 for p in paths)
    done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, *paths], capture_output=True,
                          text=True, check=True, cwd=os.getcwd())
    before, peak = map(float, done.stdout.split())
    assert peak - before < 64, (before, peak)  # MiB; inflating either would take 200


# --------------------------------------------------------------------------------------
# Read what is asked
# --------------------------------------------------------------------------------------
def _flip_in_member(src, dst, member):
    """Flip one byte inside ``member``'s data (a stored ZIP member)."""
    with zipfile.ZipFile(src) as z:
        info = z.getinfo(member)
        data = bytearray(src.read_bytes())
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        data[start + info.file_size - 1] ^= 0x01  # the member's last data byte
    dst.write_bytes(bytes(data))
    return dst


class _Counting:
    """A file that counts the bytes read from it."""

    def __init__(self, fh, counter):
        self._fh, self._counter = fh, counter

    def read(self, n=-1):
        data = self._fh.read(n)
        self._counter[0] += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def _bytes_read(monkeypatch, fn):
    from neural_sk.io import shards

    counter = [0]
    real = shards.open_file
    monkeypatch.setattr(shards, "open_file",
                        lambda *a, **k: _Counting(real(*a, **k), counter))
    fn()
    monkeypatch.setattr(shards, "open_file", real)
    return counter[0]


def test_fields_read_only_their_members_and_still_find_damage(studies, saved, tmp_path):
    from neural_sk.io import verify_archive

    with zipfile.ZipFile(saved) as z:
        names = z.namelist()
    # Damage in a member not asked for: invisible to fields=, caught by the full checks.
    other = _flip_in_member(saved, tmp_path / "attention_hit.npz", "attention.npy")
    back = load_studies(other, fields=["visual_graphs"])
    assert isinstance(back.visual_graphs, GraphList) and back.attention is None
    _assert_graphs_equal(studies.visual_graphs, back.visual_graphs)
    for check in (load_studies, verify_archive):
        with pytest.raises(ArchiveError, match="attention_hit.npz"):
            check(other)
    # Damage in an asked member is found.
    assert "visual_graphs/x.npy" in names
    hit = _flip_in_member(saved, tmp_path / "x_hit.npz", "visual_graphs/x.npy")
    with pytest.raises(ArchiveError, match="x_hit.npz"):
        load_studies(hit, fields=["visual_graphs"])
    assert verify_archive(saved) == {"files": 1, "n_studies": N,
                                     "file_bytes": saved.stat().st_size}


def test_a_few_fields_read_a_few_bytes(studies, tmp_path, monkeypatch):
    # A shard's worth of studies (ZIP opens read the last 64 kB of a file, whatever its size).
    many = concat_study_sets([studies] * 20)
    saved = tmp_path / "many.npz"
    save_studies(saved, many.replace(ids=np.arange(len(many))))
    size = saved.stat().st_size
    some = _bytes_read(monkeypatch, lambda: load_studies(saved, fields=["reports"]))
    everything = _bytes_read(monkeypatch, lambda: load_studies(saved))
    assert some <= size / 2 < size <= everything, (some, everything, size)
