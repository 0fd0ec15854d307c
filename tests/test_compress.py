"""``neural-sk compress``: streaming shards, a manifest, exactly-once resume after kill -9."""

import copy
import json
import os
import signal
import subprocess
import sys
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from neural_sk.cli import main as cli_main
from neural_sk.compress import CompressError, compress
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.io import IncompatibleArchiveError, archive_nbytes, load_studies

N = 12


@pytest.fixture(scope="module")
def model_path(tiny_pipeline_path):
    return tiny_pipeline_path


@pytest.fixture(scope="module")
def frame():
    X, _ = make_synthetic_cxr(N, image_size=64, random_state=0)
    return X


@pytest.fixture(scope="module")
def csv_folder(tmp_path_factory, frame):
    """A CSV of image paths (relative to the CSV) and reports, as an archive would have."""
    root = tmp_path_factory.mktemp("archive")
    (root / "images").mkdir()
    paths = []
    for i, image in enumerate(frame["image"]):
        rel = f"images/{i:03d}.png"
        Image.fromarray(image).save(root / rel)
        paths.append(rel)
    table = pd.DataFrame({"study_id": frame["study_id"], "image": paths,
                          "report": frame["report"]})
    table.to_csv(root / "studies.csv", index=False)
    return root


def _shard_ids(manifest):
    return [i for s in manifest["shards"] for i in s["ids"]]


def _exactly_once(manifest, expected_ids):
    kept = _shard_ids(manifest)
    failed = [f["id"] for f in manifest["failed"]]
    everything = kept + failed
    assert len(everything) == len(set(everything)), "a study is in the archive twice"
    assert sorted(map(str, everything)) == sorted(map(str, expected_ids)), "a study was lost"


def test_compress_a_csv_matches_the_in_memory_pipeline(model_path, csv_folder, frame,
                                                       tmp_path):
    out = tmp_path / "out"
    manifest = compress(csv_folder / "studies.csv", model_path, out, batch_size=4,
                        shard_size=5, verbose=0)
    assert manifest["complete"] and manifest["n_rows"] == N and manifest["n_failed"] == 0
    assert [s["rows"] for s in manifest["shards"]] == [[0, 5], [5, 10], [10, 12]]
    assert [s["ids"] for s in manifest["shards"]] == [
        frame["study_id"][a:b].tolist() for a, b in ((0, 5), (5, 10), (10, 12))]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["info"]["model_hash"]

    archive = load_studies(out)
    expected = joblib.load(model_path)[:-1].transform(frame)
    assert archive.ids.tolist() == frame["study_id"].tolist()
    # By default the minimum is stored: the graphs (the kept patches' attention travels in
    # the visual graphs); the full attention map and the report text only when asked.
    assert archive.attention is None and archive.reports is None
    np.testing.assert_allclose(archive.visual_graphs.flat("attention")[0],
                               expected.visual_graphs.flat("attention")[0],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(archive.keep_mask, expected.keep_mask)
    assert [g.num_nodes for g in archive.graphs] == [g.num_nodes for g in expected.graphs]
    assert archive_nbytes(out)["file_bytes"] == manifest["bytes"]


def test_compress_keeps_the_attention_map_and_text_when_asked(model_path, frame, tmp_path):
    X = frame.iloc[:4]
    fields = ["attention", "reports", "visual_graphs"]
    compress(X, model_path, tmp_path / "o", fields=fields, feature_dtype="int8", verbose=0)
    archive = load_studies(tmp_path / "o")
    expected = joblib.load(model_path)[:-1].transform(X)
    assert archive.reports == expected.reports
    np.testing.assert_allclose(archive.attention, expected.attention, rtol=1e-4, atol=1e-6)
    # int8 features: within half a quantisation step of the study's largest magnitude.
    for got, want in zip(archive.visual_graphs, expected.visual_graphs):
        step = float(want.x.abs().max()) / 127
        assert float((got.x - want.x).abs().max()) <= step / 2 + 1e-6


def test_a_dataframe_without_ids_uses_row_numbers(model_path, frame, tmp_path):
    X = frame[["image", "report"]].iloc[:5]
    manifest = compress(X, joblib.load(model_path), tmp_path / "o", shard_size=3, verbose=0)
    assert _shard_ids(manifest) == [0, 1, 2, 3, 4]
    assert load_studies(tmp_path / "o").ids.tolist() == [0, 1, 2, 3, 4]


def test_an_existing_archive_needs_resume(model_path, frame, tmp_path):
    X = frame.iloc[:2]
    compress(X, model_path, tmp_path / "o", verbose=0)
    with pytest.raises(FileExistsError, match="resume"):
        compress(X, model_path, tmp_path / "o", verbose=0)
    # Resuming a finished archive changes nothing.
    before = (tmp_path / "o" / "shard-000000.npz").stat().st_mtime_ns
    assert compress(X, model_path, tmp_path / "o", resume=True, verbose=0)["n_studies"] == 2
    assert (tmp_path / "o" / "shard-000000.npz").stat().st_mtime_ns == before


def test_resume_with_another_model_or_settings_raises(model_path, frame, tmp_path):
    X = frame.iloc[:2]
    out = tmp_path / "o"
    compress(X, model_path, out, verbose=0)
    other = copy.deepcopy(joblib.load(model_path))
    other[0].info_ = dict(other[0].info_, model_hash="0" * 16)
    with pytest.raises(IncompatibleArchiveError, match="model_hash"):
        compress(X, other, out, resume=True, verbose=0)
    with pytest.raises(CompressError, match="shard_size"):
        compress(X, model_path, out, resume=True, shard_size=7, verbose=0)


def test_missing_columns_are_named(model_path, frame, tmp_path):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['report'\]"):
        compress(frame[["image"]], model_path, tmp_path / "o", verbose=0)
    csv = tmp_path / "no_image.csv"
    pd.DataFrame({"path": ["a.png"], "report": ["x"]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"no_image.csv is missing column\(s\) \['image'\]"):
        compress(csv, model_path, tmp_path / "o", verbose=0)


def test_kill_9_then_resume_keeps_every_study_exactly_once(model_path, csv_folder, tmp_path):
    """kill -9 a CLI run mid-way, resume it: no study lost, none duplicated."""
    table = pd.read_csv(csv_folder / "studies.csv")
    table["image"] = [str(csv_folder / p) for p in table["image"]]
    # Row 7 (shard 3 of 6) is a FIFO: reading it blocks until the run is killed, so the
    # kill always lands mid-run, after shards 0-2 and before the end.
    fifo = tmp_path / "blocking.png"
    os.mkfifo(fifo)
    table.loc[7, "image"] = str(fifo)
    csv = tmp_path / "studies.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "neural_sk", "compress", "--input", str(csv), "--model",
           str(model_path), "--out", str(out), "--shard-size", "2", "--batch-size", "2"]
    with open(tmp_path / "log.txt", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 180
            while not (out / "shard-000002.npz").exists():
                assert proc.poll() is None, (tmp_path / "log.txt").read_text()
                assert time.monotonic() < deadline, "the first shards never appeared"
                time.sleep(0.05)
            time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"]
    assert manifest["shards"] and manifest["shards"][0]["file"] == "shard-000000.npz"
    # A kill between a shard's rename and the manifest's: the file exists, no entry does.
    manifest["shards"] = manifest["shards"][:1]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / ".shard-000003.npz.tmp-1-deadbeef").write_bytes(b"half a shard")
    first = (out / "shard-000000.npz").stat()

    fifo.unlink()
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(fifo)
    with pytest.warns(UserWarning, match=f"stale lock .*pid {proc.pid}"):  # the killed run's
        assert cli_main(["compress", "--input", str(csv), "--model", str(model_path), "--out",
                         str(out), "--shard-size", "2", "--batch-size", "2", "--resume"]) == 0

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["n_failed"] == 0
    _exactly_once(manifest, table["study_id"].tolist())
    assert load_studies(out).ids.tolist() == table["study_id"].tolist()
    # The shard the manifest listed was kept as it was, not recomputed.
    again = (out / "shard-000000.npz").stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"] + [
        f"shard-{k:06d}.npz" for k in range(6)]


def _recorded(out):
    try:
        return bool(json.loads((out / "manifest.json").read_text())["shards"])
    except (OSError, ValueError):
        return False


def test_a_second_run_on_the_same_out_is_refused_while_the_first_runs(model_path, csv_folder,
                                                                      tmp_path):
    table = pd.read_csv(csv_folder / "studies.csv")
    table["image"] = [str(csv_folder / p) for p in table["image"]]
    fifo = tmp_path / "blocking.png"  # the first run blocks on row 3, holding the folder
    os.mkfifo(fifo)
    table.loc[3, "image"] = str(fifo)
    csv = tmp_path / "studies.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "neural_sk", "compress", "--input", str(csv), "--model",
           str(model_path), "--out", str(out), "--shard-size", "2", "--batch-size", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(tmp_path / "log.txt", "wb") as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 180
            while not _recorded(out):  # shard 0 written and in the manifest: then it blocks
                assert first.poll() is None, (tmp_path / "log.txt").read_text()
                assert time.monotonic() < deadline, "the first run never wrote a shard"
                time.sleep(0.05)
            before = sorted(p.name for p in out.iterdir())
            assert "compress.lock" in before
            with pytest.raises(CompressError, match=f"running compress \\(pid {first.pid}"):
                compress(csv, model_path, out, shard_size=2, batch_size=2, resume=True,
                         verbose=0)
            assert cli_main(cmd[3:] + ["--resume"]) == 1
            assert first.poll() is None  # the first run goes on, its files untouched
            assert sorted(p.name for p in out.iterdir()) == before
        finally:
            first.kill()
            first.wait()


def test_a_lock_from_another_host_names_its_owner(model_path, frame, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "compress.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(CompressError, match="pid 1 on elsewhere.*delete"):
        compress(frame, model_path, out, verbose=0)
    assert sorted(p.name for p in out.iterdir()) == ["compress.lock"]  # nothing touched


def test_out_that_is_a_file_is_a_clear_error(model_path, frame, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(CompressError, match="is a file; give a folder"):
        compress(frame, model_path, afile, verbose=0)
    assert afile.read_text() == "x"


@pytest.fixture(scope="module")
def bad_csv(tmp_path_factory, csv_folder):
    """The CSV with a missing image at row 2 and a corrupt file at row 5."""
    root = tmp_path_factory.mktemp("bad")
    table = pd.read_csv(csv_folder / "studies.csv")
    table["image"] = [str(csv_folder / p) for p in table["image"]]
    table.loc[2, "image"] = str(root / "missing.png")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    table.loc[5, "image"] = str(root / "corrupt.png")
    table.to_csv(root / "studies.csv", index=False)
    return root / "studies.csv", table


def test_on_error_skip_records_each_failure_with_its_reason(model_path, bad_csv, tmp_path):
    csv, table = bad_csv
    manifest = compress(csv, model_path, tmp_path / "o", shard_size=4, batch_size=3,
                        verbose=0)
    failed = {f["id"]: f for f in manifest["failed"]}
    assert set(failed) == {table["study_id"][2], table["study_id"][5]}
    missing, corrupt = failed[table["study_id"][2]], failed[table["study_id"][5]]
    assert missing["row"] == 2 and "missing.png" in missing["image"]
    assert "file not found" in missing["reason"]
    assert corrupt["row"] == 5 and "corrupt.png" in corrupt["reason"]
    assert manifest["n_studies"] == N - 2 and manifest["n_rows"] == N
    _exactly_once(manifest, table["study_id"].tolist())
    kept = load_studies(tmp_path / "o")
    assert kept.ids.tolist() == [s for i, s in enumerate(table["study_id"]) if i not in (2, 5)]


def test_on_error_fail_stops_naming_the_study(model_path, bad_csv, tmp_path, capsys):
    csv, table = bad_csv
    study = table["study_id"][2]
    with pytest.raises(CompressError, match=rf"study '{study}' \(row 2, image .*missing.png"):
        compress(csv, model_path, tmp_path / "o", shard_size=4, on_error="fail", verbose=0)
    code = cli_main(["compress", "--input", str(csv), "--model", str(model_path), "--out",
                     str(tmp_path / "o2"), "--on-error", "fail"])
    assert code == 1
    assert study in capsys.readouterr().err


def test_an_image_folder_is_an_input(model_path, frame, tmp_path):
    for i, label in enumerate(["NORMAL", "NORMAL", "PNEUMONIA"]):
        (tmp_path / "in" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame["image"][i]).save(tmp_path / "in" / label / f"im{i}.png")
    manifest = compress(tmp_path / "in", model_path, tmp_path / "o", verbose=0)
    assert _shard_ids(manifest) == ["NORMAL/im0.png", "NORMAL/im1.png", "PNEUMONIA/im2.png"]


def test_dask_cluster_gives_the_same_archive(model_path, bad_csv, tmp_path):
    distributed = pytest.importorskip("distributed")
    import dask

    csv, table = bad_csv
    # CPU: forked workers cannot use a CUDA context the parent may hold.
    model = joblib.load(model_path)
    model[0].set_params(device="cpu")
    serial = compress(csv, model, tmp_path / "serial", shard_size=3, verbose=0)
    # Forked workers inherit the imported torch and spaCy: seconds instead of tens of seconds.
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        manifest = compress(csv, model, tmp_path / "dask", shard_size=3, client=client,
                            verbose=0)
    assert manifest["complete"]
    _exactly_once(manifest, table["study_id"].tolist())
    for key in ("n_studies", "n_failed", "failed"):
        assert manifest[key] == serial[key]
    assert [s["ids"] for s in manifest["shards"]] == [s["ids"] for s in serial["shards"]]
    a, b = load_studies(tmp_path / "serial"), load_studies(tmp_path / "dask")
    np.testing.assert_allclose(a.visual_graphs.flat("x")[0], b.visual_graphs.flat("x")[0],
                               rtol=1e-3, atol=1e-3)


def test_kept_pixels_travel_with_the_archive(model_path, frame, tmp_path):
    from neural_sk.io import load_sparse_images
    from neural_sk.plotting import prune_image

    X = frame.iloc[:5]
    compress(X, model_path, tmp_path / "o", shard_size=2, pixels="png", verbose=0)
    archive = load_studies(tmp_path / "o")
    for image, keep, sparse in zip(X["image"], archive.keep_mask,
                                   load_sparse_images(tmp_path / "o")):
        np.testing.assert_array_equal(sparse, prune_image(image, keep, archive.grid_shape))


def test_a_model_for_a_missing_device_stops_before_any_shard(model_path, frame, tmp_path,
                                                              capsys):
    pipe = joblib.load(model_path)
    pipe.set_params(scorer__device="mps")  # a device this machine's torch does not have
    saved = tmp_path / "mps.joblib"
    joblib.dump(pipe, saved)
    out = tmp_path / "o"
    with pytest.raises(CompressError, match="AttentionScorer cannot run here: device='mps'"):
        compress(frame, saved, out, verbose=0)
    assert not out.exists()  # nothing written, no manifest marked complete
    csv = tmp_path / "in.csv"
    frame.drop(columns=["image"]).assign(image=[f"missing{i}.png" for i in range(len(frame))]
                                         ).to_csv(csv, index=False)
    assert cli_main(["compress", "--input", str(csv), "--model", str(saved), "--out",
                     str(out), "-q"]) == 1
    assert "--device cpu" in capsys.readouterr().err
    # the same model file runs here when told which device to use
    manifest = compress(frame, saved, out, verbose=0, device="cpu")
    assert manifest["complete"] and manifest["n_failed"] == 0


def test_exit_status_says_whether_every_study_was_archived(model_path, bad_csv, csv_folder,
                                                           tmp_path):
    csv, _ = bad_csv
    args = ["--model", str(model_path), "--shard-size", "4", "-q"]
    assert cli_main(["compress", "--input", str(csv), "--out", str(tmp_path / "a"), *args]) == 3
    assert cli_main(["compress", "--input", str(csv_folder / "studies.csv"),
                     "--out", str(tmp_path / "b"), *args]) == 0


def test_a_flat_image_folder_is_an_input(model_path, frame, tmp_path):
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(frame["image"][i]).save(tmp_path / "in" / f"im{i}.png")
    manifest = compress(tmp_path / "in", model_path, tmp_path / "o", verbose=0)
    assert _shard_ids(manifest) == ["im0.png", "im1.png", "im2.png"]
