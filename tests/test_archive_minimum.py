"""The archive stores the minimum and rebuilds the rest (format 2): fused graphs, keep mask,
grid positions rebuilt exactly; report findings coded; int8 features; one count of bytes;
format 1 still read; the Arrow export."""

from pathlib import Path

import numpy as np
import pytest

from _archive_studies import hand_studies

from neural_sk import io as nio
from neural_sk.graphs import fuse_graphs
from neural_sk.io import (ArchiveError, archive_info, archive_nbytes, load_studies,
                          save_studies, studies_nbytes, verify_archive)
from neural_sk.io.derived import same_graphs

V1_ARCHIVE = Path(__file__).parent / "data" / "archive_v1.npz"


@pytest.fixture(scope="module")
def studies():
    return hand_studies()


@pytest.fixture(scope="module")
def many(studies):
    """Sixty studies: enough for the report codes and their table to beat the plain
    attributes (a handful of studies stores them plainly)."""
    many = studies[np.tile(np.arange(len(studies)), 10)]
    return many.replace(ids=np.arange(len(many)))


@pytest.fixture(scope="module")
def lean(tmp_path_factory, many):
    path = tmp_path_factory.mktemp("lean") / "lean.npz"
    save_studies(path, many, fields=nio.format.lean_fields(many))
    return path


def test_fused_graphs_are_rebuilt_equal_to_the_in_memory_fuse(studies, tmp_path):
    path = tmp_path / "f32.npz"
    save_studies(path, studies, feature_dtype="float32")
    info = archive_info(path)
    assert info["format_version"] == nio.FORMAT_VERSION == 2
    assert info["fields"]["graphs"] == {"kind": "fused", "strategy": "centrality"}
    assert not [a for a in info["arrays"] if a.startswith("graphs/")]  # nothing stored
    assert archive_nbytes(path)["fields"]["graphs"] == 0
    back = load_studies(path)
    for field in ("visual_graphs", "report_graphs", "graphs"):  # float32: exact
        assert same_graphs(getattr(back, field), getattr(studies, field)), field
    assert back.graphs[3].node_status.tolist() == studies.graphs[3].node_status.tolist()
    # float16 features: the fused graphs are the fuse of what was stored.
    save_studies(path, studies)
    back = load_studies(path)
    assert same_graphs(back.graphs, fuse_graphs(back.visual_graphs, back.report_graphs))
    assert same_graphs(load_studies(path, fields=["graphs"]).graphs, back.graphs)


@pytest.mark.parametrize("strategy", ["visual", "report"])
def test_other_fusions_are_rebuilt_too(strategy, tmp_path):
    studies = hand_studies(strategy)
    save_studies(tmp_path / "s.npz", studies, feature_dtype="float32")
    assert archive_info(tmp_path / "s.npz")["fields"]["graphs"]["strategy"] == strategy
    assert same_graphs(load_studies(tmp_path / "s.npz").graphs, studies.graphs)


def test_fused_graphs_without_their_parts_are_stored_whole(studies, tmp_path):
    save_studies(tmp_path / "s.npz", studies, fields=["graphs"], feature_dtype="float32")
    assert archive_info(tmp_path / "s.npz")["fields"]["graphs"]["kind"] == "graphs"
    assert same_graphs(load_studies(tmp_path / "s.npz").graphs, studies.graphs)


def test_report_findings_are_codes_into_one_vocabulary(many, lean):
    studies = many
    info = archive_info(lean)
    attrs = info["fields"]["report_graphs"]["attrs"]
    assert {k: attrs[k]["kind"] for k in ("x", "node_names", "node_status", "node_kind")} == {
        "x": "coded", "node_names": "coded_names", "node_status": "coded",
        "node_kind": "coded"}
    nodes = int(studies.report_graphs.node_counts.sum())
    assert info["arrays"]["report_graphs/nodes.code"] == {"dtype": "|u1", "shape": [nodes]}
    back = load_studies(lean, fields=["report_graphs"])
    assert same_graphs(back.report_graphs, studies.report_graphs)
    assert back.report_graphs.keys == studies.report_graphs.keys  # attribute order kept


def test_the_keep_mask_and_positions_are_rebuilt_from_the_patch_ids(many, lean):
    studies = many
    arrays = archive_info(lean)["arrays"]
    assert "keep_mask" not in arrays and "visual_graphs/pos" not in arrays
    back = load_studies(lean, fields=["keep_mask"])
    np.testing.assert_array_equal(back.keep_mask, studies.keep_mask)
    np.testing.assert_array_equal(load_studies(lean).visual_graphs.flat("pos")[0],
                                  studies.visual_graphs.flat("pos")[0])


def test_the_lean_archive_leaves_out_the_map_and_the_text(lean):
    back = load_studies(lean)
    assert back.attention is None and back.reports is None and back.patch_features is None
    assert set(archive_nbytes(lean)["fields"]) == {"ids", "keep_mask", "visual_graphs",
                                                   "report_graphs", "graphs"}


def test_int8_features_are_within_half_a_step_and_half_the_bytes(studies, tmp_path):
    save_studies(tmp_path / "f16.npz", studies)
    save_studies(tmp_path / "i8.npz", studies, feature_dtype="int8")
    back = load_studies(tmp_path / "i8.npz")
    x0, ptr = studies.visual_graphs.flat("x")
    x1 = back.visual_graphs.flat("x")[0]
    assert x1.dtype == np.float32
    for a, b in zip(ptr[:-1], ptr[1:]):
        step = np.abs(x0[a:b]).max() / 127
        assert np.abs(x1[a:b] - x0[a:b]).max() <= step / 2 * (1 + 1e-6)
    f16 = archive_info(tmp_path / "f16.npz")["arrays"]["visual_graphs/x"]
    i8 = archive_info(tmp_path / "i8.npz")["arrays"]["visual_graphs/x"]
    assert (f16["dtype"], i8["dtype"], i8["shape"]) == ("<f2", "|i1", f16["shape"])
    assert archive_info(tmp_path / "i8.npz")["arrays"]["visual_graphs/x.scale"]["shape"] == [
        len(studies)]  # one scale per study
    assert same_graphs(back.graphs, fuse_graphs(back.visual_graphs, back.report_graphs))
    with pytest.raises(ValueError, match="feature_dtype"):
        save_studies(tmp_path / "x.npz", studies, feature_dtype="int4")


def test_bytes_before_writing_are_the_bytes_written(studies, tmp_path):
    for dtype in ("float16", "int8"):
        save_studies(tmp_path / f"{dtype}.npz", studies, feature_dtype=dtype)
        written = archive_nbytes(tmp_path / f"{dtype}.npz")["per_study"]
        before = studies_nbytes(studies, feature_dtype=dtype)
        for column in ("visual_graphs", "report_graphs", "graphs", "attention", "total"):
            if column == "total":  # the writer's total also counts the ids
                np.testing.assert_array_equal(before[column] + written["ids"],
                                              written[column])
            else:
                np.testing.assert_array_equal(before[column], written[column], column)


@pytest.mark.parametrize("fields", [None, ["visual_graphs"], ["keep_mask"]])
def test_a_flipped_byte_in_a_rebuilt_from_member_is_found(lean, tmp_path, fields):
    import zipfile

    data = bytearray(lean.read_bytes())
    with zipfile.ZipFile(lean) as zf:
        member = zf.getinfo("visual_graphs/patch_id.npy")
    local = member.header_offset  # local header: 30 bytes, the name, the extra field
    start = local + 30 + int.from_bytes(data[local + 26:local + 28], "little") \
        + int.from_bytes(data[local + 28:local + 30], "little")
    data[start + member.file_size - 1] ^= 0x01  # the last patch id
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="bad.npz"):
        load_studies(bad, fields=fields)
    with pytest.raises(ArchiveError, match="bad.npz"):
        verify_archive(bad)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["fields"]["graphs"].update(strategy="grounded"), "cannot be rebuilt"),
    (lambda m: m["fields"]["keep_mask"].update(n_patches=3), "patch"),
    (lambda m: m["fields"]["report_graphs"]["attrs"]["x"].update(table="ids"), "match"),
    (lambda m: m["fields"]["report_graphs"].update(order=["x"]), "order"),
])
def test_a_forged_rebuild_spec_is_an_archive_error(lean, tmp_path, edit, match):
    import json
    import zipfile

    with zipfile.ZipFile(lean) as zf:
        meta = json.loads(zf.read("meta.json"))
        arrays = {name[:-4]: np.load(zf.open(name)) for name in zf.namelist()
                  if name.endswith(".npy")}
    edit(meta)
    meta["payload_sha256"] = nio.checksums.payload_digest(arrays)
    path = tmp_path / "forged.npz"
    nio.shards.write_shard(path, arrays, meta, False)
    with pytest.raises(ArchiveError, match=f"forged.npz.*{match}|{match}.*forged.npz"):
        load_studies(path)


def _same_data(g0, g1, *, x_dtype=None):
    """Two graphs with the same attributes (any order) and values; ``x`` rounded to
    ``x_dtype`` first when given."""
    import torch

    assert sorted(g0.keys()) == sorted(g1.keys())
    for key in g0.keys():
        a, b = g0[key], g1[key]
        if not torch.is_tensor(a):
            assert a == b, key
            continue
        if key == "x" and x_dtype is not None:
            a = a.to(x_dtype).to(a.dtype)
        assert a.dtype == b.dtype and torch.equal(torch.nan_to_num(a, nan=-1.0),
                                                  torch.nan_to_num(b, nan=-1.0)), key


@pytest.mark.skipif(not V1_ARCHIVE.exists(), reason="no format-1 archive in tests/data")
def test_a_format_1_archive_still_reads(studies):
    import torch

    # Written by neural_sk at format 1 from hand_studies() (float16 features, every field).
    assert archive_info(V1_ARCHIVE)["format_version"] == 1
    back = load_studies(V1_ARCHIVE)
    assert back.reports == studies.reports
    np.testing.assert_array_equal(back.keep_mask, studies.keep_mask)
    np.testing.assert_array_equal(back.attention, studies.attention)
    for field in ("visual_graphs", "report_graphs", "graphs"):
        for g0, g1 in zip(getattr(studies, field), getattr(back, field)):
            _same_data(g0, g1, x_dtype=torch.float16)


def test_the_arrow_export_is_one_row_per_study(studies, many, lean, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    table = nio.to_arrow(lean)
    assert table.num_rows == len(many)
    counts = [len(v) for v in table.column("visual_graphs.x").to_pylist()]
    assert counts == many.visual_graphs.node_counts.tolist()
    out = tmp_path / "s.parquet"
    assert nio.export_parquet(studies, out)["n_studies"] == len(studies)
    frame = pd.read_parquet(out)
    assert frame["id"].tolist() == studies.ids.tolist()
    assert frame["reports"].tolist() == studies.reports
    g = studies.graphs[3]
    np.testing.assert_array_equal(np.stack(frame["graphs.x"][3]), g.x.numpy())
    np.testing.assert_array_equal(np.stack(frame["graphs.edge_index"][3]).T,
                                  g.edge_index.numpy())
    assert list(frame["report_graphs.node_names"][3]) == g.node_names


def test_reading_a_few_fields_reads_a_few_of_the_files_bytes(studies, tmp_path, monkeypatch):
    from neural_sk.io import shards

    big = studies[np.tile(np.arange(len(studies)), 100)]
    big = big.replace(ids=np.arange(len(big)))
    path = tmp_path / "big.npz"
    save_studies(path, big, fields=nio.format.lean_fields(big))
    size = path.stat().st_size
    tally = []
    opener = shards.open_file

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def read(self, *args):
            data = self.fh.read(*args)
            tally.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(shards, "open_file", lambda *a, **k: Counting(opener(*a, **k)))
    read = {}
    for fields in (["ids"], ["keep_mask"], None):
        tally.clear()
        load_studies(path, fields=fields)
        read[str(fields)] = sum(tally) / size
    # The ids and the patch ids are a few percent of the file: no 64 KiB end-record scan.
    assert read["['ids']"] < 0.1 and read["['keep_mask']"] < 0.15
    assert 1 <= read["None"] < 2.1  # a full load hashes every byte, then reads the members
