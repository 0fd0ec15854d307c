"""The real-data loaders on tiny trees written here in each archive's published layout."""

from __future__ import annotations

import re
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from _fake_trees import (
    CHEXPERT_ROWS,
    FOLDER_FILES,
    IU_STUDIES,
    MIMIC_STUDIES,
    write_chexpert_plus_tree,
    write_image_folder,
    write_iu_tree,
    write_mimic_tree,
)
from sklearn.model_selection import GroupKFold

from neural_sk.datasets import read_image
from neural_sk.datasets._labels import apply_uncertain_policy, find_target_column
from neural_sk.datasets.chexpert import load_chexpert_plus
from neural_sk.datasets.folder import load_image_folder
from neural_sk.datasets.iu import load_iu_xray
from neural_sk.datasets.mimic import index_mimic_tree, load_mimic_cxr

pytest.importorskip("pydicom")

# The loaders warn about every study they leave out; tests that expect an error or check other
# things need not print those. pytest.warns and load_recording still see every warning.
pytestmark = pytest.mark.filterwarnings(r"ignore:load_\w+. dropped:UserWarning")


def words(text: str) -> str:
    return " ".join(str(text).split())


def load_recording(loader, *args, **kwargs):
    """Call a loader and return (X, y, the text of every warning it raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X, y = loader(*args, **kwargs)
    return X, y, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def warned_ids(messages: list[str]) -> set[str]:
    """The ids a loader's 'dropped' warnings name."""
    out = set()
    for m in messages:
        if "dropped" in m:
            listed = m.rsplit("): ", 1)[-1].split(" and ")[0]
            out |= set(re.findall(r"[\w./-]+", listed))
    return out


def check_images_readable(X: pd.DataFrame) -> None:
    for path in X["image"]:
        img = read_image(path)
        assert img.dtype == np.float32 and img.ndim == 2
        assert 0.0 <= img.min() and img.max() <= 1.0


# ----------------------------------------------------------------------------------- MIMIC-CXR

@pytest.fixture(scope="module")
def mimic_dcm(tmp_path_factory):
    return write_mimic_tree(tmp_path_factory.mktemp("mimic_dcm"), formats=("dcm",))["root"]


@pytest.fixture(scope="module")
def mimic_jpg(tmp_path_factory):
    # MIMIC-CXR-JPG: jpg images and the CSVs, reports shipped separately (another tree).
    root = tmp_path_factory.mktemp("mimic_jpg")
    write_mimic_tree(root, formats=("jpg",), reports=False, gz=False)
    reports = tmp_path_factory.mktemp("mimic_reports")
    write_mimic_tree(reports, formats=(), reports=True, csvs=False)
    return root, reports


@pytest.fixture(scope="module")
def mimic_default(mimic_dcm):
    return load_recording(load_mimic_cxr, mimic_dcm, missing_report="drop")


def test_mimic_index_is_one_walk_of_the_layout(mimic_dcm):
    images, reports = index_mimic_tree(mimic_dcm / "files")
    n_images = sum(len(s[2]) for s in MIMIC_STUDIES)
    assert len(images) == n_images
    assert set(images["study_id"]) == {s[1] for s in MIMIC_STUDIES}
    # One report file per study that has text; the study without one is absent, not invented.
    assert set(reports["study_id"]) == {s[1] for s in MIMIC_STUDIES if s[3] or s[4]}
    row = images[images["dicom_id"] == "d1-pa"].iloc[0]
    assert (row["subject_id"], row["study_id"]) == (10000001, 50000001)
    assert row["image"].endswith("files/p10/p10000001/s50000001/d1-pa.dcm")


def test_mimic_frontal_image_per_study(mimic_default):
    X, y, _ = mimic_default
    assert list(X.columns[:4]) == ["image", "report", "patient_id", "study_id"]
    assert X["study_id"].is_unique and len(X) == len(y)
    chosen = dict(zip(X["study_id"], X["dicom_id"], strict=True))
    assert chosen[50000001] == "d1-pa"  # the lateral of the same study is filtered out
    assert chosen[50000005] == "d5-pa"  # PA preferred over AP, though AP comes first in metadata
    assert set(X["view"]) <= {"PA", "AP"}
    assert 50000004 not in chosen  # lateral-only study
    assert X.loc[X["study_id"] == 50000001, "patient_id"].item() == 10000001
    assert X.loc[X["study_id"] == 50000002, "patient_id"].item() == 10000001
    assert set(X["split"]) <= {"train", "test"}
    check_images_readable(X)


def test_mimic_never_drops_silently(mimic_default):
    X, y, messages = mimic_default
    kept = {str(s) for s in X["study_id"]}
    named = warned_ids(messages)
    all_studies = {str(s[1]) for s in MIMIC_STUDIES}
    assert kept | (named & all_studies) == all_studies
    assert not kept & named
    text = "\n".join(messages)
    assert "50000004" in text and "ViewPosition" in text  # lateral only
    assert "50000003" in text and "uncertain" in text  # -1 under uncertain="drop"
    assert "50000008" in text and "mimic-cxr-2.0.0-chexpert.csv.gz" in text  # no label row
    assert "50000006" in text and "report" in text  # no report file


def test_mimic_labels_follow_the_csv(mimic_default):
    X, y, _ = mimic_default
    truth = {s[1]: s[5] for s in MIMIC_STUDIES}
    for study, label in zip(X["study_id"], y, strict=True):
        expected = truth[study]
        assert label == (0 if expected is None or np.isnan(expected) else int(expected))
    assert y.dtype == np.int64


@pytest.mark.parametrize("policy, expected", [("drop", None), ("positive", 1), ("negative", 0)])
def test_mimic_uncertain_policy(mimic_dcm, policy, expected):
    X, y, _ = load_recording(load_mimic_cxr, mimic_dcm, uncertain=policy, missing_report="empty")
    labels = dict(zip(X["study_id"], y, strict=True))
    if expected is None:
        assert 50000003 not in labels
    else:
        assert labels[50000003] == expected


def test_mimic_negbio_labels(mimic_dcm):
    X, y, _ = load_recording(load_mimic_cxr, mimic_dcm, labels="negbio", missing_report="drop")
    assert dict(zip(X["study_id"], y, strict=True))[50000002] == 1  # chexpert says 0


def test_mimic_sections(mimic_dcm):
    kw = dict(missing_report="drop")
    imp, _, _ = load_recording(load_mimic_cxr, mimic_dcm, section="impression", **kw)
    fin, _, _ = load_recording(load_mimic_cxr, mimic_dcm, section="findings", **kw)
    both, _, _ = load_recording(load_mimic_cxr, mimic_dcm, section="both", **kw)
    row = {s[1]: s for s in MIMIC_STUDIES}
    for X, idx in ((imp, 4), (fin, 3)):
        r = X.set_index("study_id").loc[50000001]
        assert words(r["report"]) == row[50000001][idx]
    r = both.set_index("study_id").loc[50000001, "report"]
    assert row[50000001][3] in words(r) and row[50000001][4] in words(r)
    # No IMPRESSION: falls back to FINDINGS, and says so.
    r = imp.set_index("study_id").loc[50000007]
    assert words(r["report"]) == row[50000007][3] and r["report_section"] == "findings"
    assert imp.set_index("study_id").loc[50000001, "report_section"] == "impression"


def test_mimic_missing_report_policies(mimic_dcm):
    with pytest.raises(ValueError, match="50000006"):
        load_mimic_cxr(mimic_dcm)
    with pytest.warns(UserWarning, match=r"dropped 1 studies .*report.*50000006"):
        X, _ = load_mimic_cxr(mimic_dcm, missing_report="drop")
    assert 50000006 not in set(X["study_id"])
    X, _, _ = load_recording(load_mimic_cxr, mimic_dcm, missing_report="empty")
    assert X.set_index("study_id").loc[50000006, "report"] == ""


def test_mimic_jpg_variant_with_reports_elsewhere(mimic_jpg):
    root, reports = mimic_jpg
    X, y, _ = load_recording(load_mimic_cxr, root, reports_root=reports, missing_report="drop")
    assert len(X) > 0 and all(p.endswith(".jpg") for p in X["image"])
    assert words(X.set_index("study_id").loc[50000001, "report"]) == MIMIC_STUDIES[0][4]
    check_images_readable(X)
    with pytest.raises(FileNotFoundError, match=r"\.dcm"):
        load_mimic_cxr(root, image_format="dcm", reports_root=reports)
    # Without the reports tree every study lacks its report: named, not dropped silently.
    with pytest.raises(ValueError, match="no report file"):
        load_mimic_cxr(root)


def test_mimic_auto_prefers_dicom(tmp_path):
    write_mimic_tree(tmp_path, formats=("dcm", "jpg"))
    X, _, _ = load_recording(load_mimic_cxr, tmp_path, missing_report="drop")
    assert all(p.endswith(".dcm") for p in X["image"])
    X, _, _ = load_recording(load_mimic_cxr, tmp_path, image_format="jpg", missing_report="drop")
    assert all(p.endswith(".jpg") for p in X["image"])


def test_mimic_monochrome1_reads_like_the_picture(mimic_dcm):
    # d1-pa is stored MONOCHROME1 (inverted values); it must read as bright square on the left.
    img = read_image(mimic_dcm / "files/p10/p10000001/s50000001/d1-pa.dcm")
    assert img[4, 4] > 0.9 and img[20, 1] < img[20, 30]


def test_mimic_all_images_per_study(mimic_dcm):
    X, _, _ = load_recording(load_mimic_cxr, mimic_dcm, one_per_study=False, missing_report="drop")
    assert sorted(X.loc[X["study_id"] == 50000005, "dicom_id"]) == ["d5-ap", "d5-pa"]
    assert list(X.loc[X["study_id"] == 50000001, "dicom_id"]) == ["d1-pa"]
    X, _, _ = load_recording(load_mimic_cxr, mimic_dcm, views=None, one_per_study=False,
                             missing_report="drop")
    assert "d1-lat" in set(X["dicom_id"])


def test_mimic_patient_groups_split_cleanly(mimic_dcm):
    X, y, _ = load_recording(load_mimic_cxr, mimic_dcm, uncertain="positive",
                             missing_report="empty")
    for train, test in GroupKFold(n_splits=2).split(X, y, groups=X["patient_id"]):
        assert not set(X["patient_id"].iloc[train]) & set(X["patient_id"].iloc[test])


def test_mimic_errors_name_what_is_missing(tmp_path, mimic_dcm):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mimic_cxr(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="'files'"):
        load_mimic_cxr(tmp_path)
    bare = tmp_path / "bare"
    write_mimic_tree(bare, formats=("jpg",), csvs=False)
    with pytest.raises(FileNotFoundError, match="mimic-cxr-2.0.0-chexpert.csv"):
        load_mimic_cxr(bare)
    shutil.copy(mimic_dcm / "mimic-cxr-2.0.0-chexpert.csv.gz", bare)
    with pytest.raises(FileNotFoundError, match="mimic-cxr-2.0.0-metadata.csv"):
        load_mimic_cxr(bare)
    # Without views, no metadata is needed: one image per study, the first dicom_id.
    X, _, _ = load_recording(load_mimic_cxr, bare, views=None, missing_report="drop")
    assert X["study_id"].is_unique and "view" not in X.columns
    assert X.set_index("study_id").loc[50000001, "dicom_id"] == "d1-lat"
    with pytest.raises(ValueError, match="uncertain must be one of"):
        load_mimic_cxr(mimic_dcm, uncertain="maybe")
    with pytest.raises(ValueError, match="'pneumonitis' is not a column.*Pneumonia"):
        load_mimic_cxr(mimic_dcm, target="pneumonitis")


def test_mimic_other_target(mimic_dcm):
    X, y, _ = load_recording(load_mimic_cxr, mimic_dcm, target="No Finding",
                             missing_report="drop")
    truth = {s[1]: int(s[5] == 0) for s in MIMIC_STUDIES}
    assert [truth[s] for s in X["study_id"]] == y.tolist()


# ------------------------------------------------------------------------------ CheXpert Plus

@pytest.fixture(scope="module")
def chexpert_root(tmp_path_factory):
    return write_chexpert_plus_tree(tmp_path_factory.mktemp("chexpert_plus"))["root"]


def test_chexpert_plus_default(chexpert_root):
    X, y, messages = load_recording(load_chexpert_plus, chexpert_root, missing_report="drop")
    studies = {r[0].rsplit("/", 1)[0] for r in CHEXPERT_ROWS}
    assert X["study_id"].is_unique and set(X["view"]) == {"Frontal"}
    assert set(X["study_id"]) | (warned_ids(messages) & studies) == studies
    by_study = X.set_index("study_id")
    # The frontal image, found as written, as PNG under PNG/, or as the DICOM.
    assert by_study.loc["train/patient00001/study1", "image"].endswith("view1_frontal.jpg")
    assert by_study.loc["train/patient00004/study1", "image"].endswith(
        "PNG/train/patient00004/study1/view1_frontal.png")
    assert by_study.loc["train/patient00006/study1", "image"].endswith("view1_frontal.dcm")
    assert by_study.loc["train/patient00001/study1", "patient_id"] == "patient00001"
    assert "train/patient00002/study1" in "\n".join(messages)  # lateral only, named
    assert "train/patient00001/study2" in "\n".join(messages)  # uncertain, named
    labels = dict(zip(X["study_id"], y, strict=True))
    assert labels["train/patient00001/study1"] == 1 and labels["valid/patient00003/study1"] == 0
    assert words(by_study.loc["train/patient00006/study1", "report"]) == "Left lower lobe pneumonia."
    assert by_study.loc["valid/patient00003/study1", "report_section"] == "findings"
    check_images_readable(X)


@pytest.mark.parametrize("policy, expected", [("drop", None), ("positive", 1), ("negative", 0)])
def test_chexpert_plus_uncertain(chexpert_root, policy, expected):
    X, y, _ = load_recording(load_chexpert_plus, chexpert_root, uncertain=policy,
                             missing_report="empty")
    labels = dict(zip(X["study_id"], y, strict=True))
    assert labels.get("train/patient00001/study2") == expected


def test_chexpert_plus_missing_files(chexpert_root, tmp_path):
    with pytest.raises(ValueError, match="patient00005"):
        load_chexpert_plus(chexpert_root)
    with pytest.raises(FileNotFoundError, match="df_other.csv"):
        load_chexpert_plus(chexpert_root, csv="df_other.csv")
    with pytest.raises(FileNotFoundError, match="report_fixed.json"):
        load_chexpert_plus(chexpert_root, labels_file="chexbert_labels/report_fixed.json")
    table = pd.read_csv(chexpert_root / "df_chexpert_plus_240401.csv")
    extra = table.iloc[[0]].assign(path_to_image="train/patient09999/study1/view1_frontal.jpg",
                                   path_to_dcm="train/patient09999/study1/view1_frontal.dcm")
    csv = tmp_path / "with_missing.csv"
    pd.concat([table, extra]).to_csv(csv, index=False)
    with pytest.raises(FileNotFoundError, match="patient09999"):
        load_chexpert_plus(chexpert_root, csv=csv, missing_report="drop")
    with pytest.warns(UserWarning, match="patient09999"):
        X, _ = load_chexpert_plus(chexpert_root, csv=csv, missing_report="drop",
                                  missing_image="drop")
    assert "train/patient09999/study1" not in set(X["study_id"])


def test_chexpert_plus_image_format(chexpert_root):
    X, _, _ = load_recording(load_chexpert_plus, chexpert_root, image_format="dcm",
                             missing_report="drop", missing_image="drop")
    assert list(X["study_id"]) == ["train/patient00006/study1"]
    assert X["image"].str.endswith(".dcm").all()


# ------------------------------------------------------------------------------- IU / Open-i

@pytest.fixture(scope="module")
def iu_xml(tmp_path_factory):
    return write_iu_tree(tmp_path_factory.mktemp("iu_xml"), form="xml")["root"]


@pytest.fixture(scope="module")
def iu_csv(tmp_path_factory):
    return write_iu_tree(tmp_path_factory.mktemp("iu_csv"), form="csv")["root"]


@pytest.mark.parametrize("form", ["xml", "csv"])
def test_iu_frontal_with_given_labels(form, iu_xml, iu_csv):
    root = iu_xml if form == "xml" else iu_csv
    X, y, messages = load_recording(load_iu_xray, root, labels=root / "iu_labels.csv",
                                    label_column="chexpert_pneumonia", missing_report="drop")
    assert X["study_id"].is_unique and set(X["view"]) == {"Frontal"}
    by_uid = dict(zip(X["study_id"], X["filename"], strict=True))
    assert "IM-0652-1001" in by_uid[2]  # the frontal one, listed after the lateral
    assert {int(u) for u in X["study_id"]} | {int(i) for i in warned_ids(messages)
                                              if i.isdigit()} >= {s[0] for s in IU_STUDIES}
    text = "\n".join(messages)
    assert re.search(r"no image found\): \[6\]", text)  # report without images
    assert re.search(r"projection in \['Frontal'\]\): \[3\]", text)  # lateral only
    assert re.search(r"uncertain.*\[4\]", text)
    assert dict(zip(X["study_id"], y, strict=True)) == {1: 0, 2: 1}
    row = X.set_index("study_id").loc[2]
    assert "Right lower lobe pneumonia." in row["report"] and "FINDINGS" in row["report"]
    check_images_readable(X)


def test_iu_uncertain_and_missing_text(iu_csv):
    labels = iu_csv / "iu_labels.csv"
    for policy, expected in (("positive", 1), ("negative", 0)):
        X, y, _ = load_recording(load_iu_xray, iu_csv, labels=labels, uncertain=policy,
                                 label_column="chexpert_pneumonia", missing_report="drop")
        assert dict(zip(X["study_id"], y, strict=True))[4] == expected
    with pytest.raises(ValueError, match=r"neither findings nor impression.*\[5\]"):
        load_iu_xray(iu_csv, labels=labels, label_column="chexpert_pneumonia")
    with pytest.raises(ValueError, match="chexpert_pneumonia.*negbio_pneumonia"):
        load_iu_xray(iu_csv, labels=labels, missing_report="drop")


def test_iu_xml_without_projections(tmp_path):
    root = write_iu_tree(tmp_path, form="xml", projections=False)["root"]
    with pytest.raises(FileNotFoundError, match="indiana_projections.csv"):
        load_iu_xray(root, labels=root / "iu_labels.csv", label_column="chexpert_pneumonia")
    X, _, _ = load_recording(load_iu_xray, root, views=None, one_per_study=False,
                             labels=root / "iu_labels.csv", label_column="chexpert_pneumonia",
                             missing_report="drop")
    assert (X["study_id"] == 1).sum() == 2  # both images of study 1
    with pytest.raises(FileNotFoundError, match="ecgen-radiology"):
        load_iu_xray(tmp_path / "images")


def test_iu_labels_from_our_labeler(iu_xml):
    X, y, _ = load_recording(load_iu_xray, iu_xml, uncertain="positive", missing_report="drop")
    labels = dict(zip(X["study_id"], y, strict=True))
    assert labels[2] == 1 and labels[1] == 0


# ------------------------------------------------------------------------------ image folders

@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("chest_xray"))["root"]


def test_image_folder_binary_and_patients(folder_root):
    X, y = load_image_folder(folder_root / "train")
    assert len(X) == sum(f.startswith("train/") for f in FOLDER_FILES)
    assert ((X["label"] == "PNEUMONIA").to_numpy() == (y == 1)).all()
    pats = dict(zip(X["study_id"], X["patient_id"], strict=True))
    assert pats["PNEUMONIA/person1_bacteria_1.jpeg"] == "person1"
    assert pats["PNEUMONIA/person1_virus_6.jpeg"] == "person1"
    assert pats["NORMAL/IM-0115-0001.jpeg"] == "IM-0115-0001"
    assert (X["report"] == "").all() and "split" not in X.columns
    check_images_readable(X)


def test_image_folder_splits_reports_and_templates(folder_root, tmp_path):
    csv = tmp_path / "reports.csv"
    pd.DataFrame({"image": ["train/PNEUMONIA/person1_bacteria_1.jpeg", "IM-0001-0001.jpeg"],
                  "report": ["Right lower lobe pneumonia.", "Clear lungs."]}).to_csv(csv)
    template = {"NORMAL": "No acute findings.", "PNEUMONIA": "Findings of {label}."}
    X, y = load_image_folder(folder_root, reports=csv, report_template=template)
    assert len(X) == len(FOLDER_FILES)  # __MACOSX and notes.txt ignored
    r = X.set_index("study_id")["report"]
    assert r["train/PNEUMONIA/person1_bacteria_1.jpeg"] == "Right lower lobe pneumonia."
    assert r["test/NORMAL/IM-0001-0001.jpeg"] == "Clear lungs."
    assert r["train/PNEUMONIA/person2_bacteria_3.png"] == "Findings of PNEUMONIA."
    assert set(X["split"]) == {"train", "test"}
    with pytest.raises(ValueError, match="person2_bacteria_3.png"):
        load_image_folder(folder_root, reports=csv)
    with pytest.warns(UserWarning, match="dropped 6 studies"):
        X, _ = load_image_folder(folder_root, reports=csv, missing_report="drop")
    assert len(X) == 2


def test_image_folder_explicit_classes(folder_root):
    with pytest.warns(UserWarning, match="NORMAL"):
        X, y = load_image_folder(folder_root / "train", classes=["PNEUMONIA"])
    assert (y == 0).all() and (X["label"] == "PNEUMONIA").all()
    X, y = load_image_folder(folder_root / "train", classes=["PNEUMONIA", "NORMAL"])
    assert ((X["label"] == "NORMAL").to_numpy() == (y == 1)).all()
    with pytest.raises(FileNotFoundError, match="COVID"):
        load_image_folder(folder_root / "train", classes=["NORMAL", "COVID"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(folder_root / "nowhere")


# ---------------------------------------------------------------------------- shared policy

def test_uncertain_policy_rejects_unknown_values():
    with pytest.raises(ValueError, match="study 'b'.*2.0"):
        apply_uncertain_policy([1.0, 2.0], "drop", ids=["a", "b"], source="t", target="x")
    y, keep = apply_uncertain_policy(["1", "", None, "-1"], "negative", ids=[1, 2, 3, 4],
                                     source="t", target="x")
    assert y.tolist() == [1, 0, 0, 0] and keep.all()


def test_target_spellings():
    cols = ["study_id", "Pleural Effusion", "Support Devices"]
    for name in ("pleural-effusion", "Pleural Effusion", "pleural_effusion"):
        assert find_target_column(cols, name, source="t") == "Pleural Effusion"
    assert find_target_column(cols, "support device", source="t") == "Support Devices"


def test_a_flat_image_folder_loads_unlabelled(tmp_path):
    from PIL import Image

    from neural_sk.datasets import load_image_folder

    for name in ("b.png", "a.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / name)
    X, y = load_image_folder(tmp_path)
    assert y is None and "label" not in X.columns
    assert X["study_id"].tolist() == ["a.png", "b.png"]
    with pytest.raises(ValueError, match="no class folders"):
        load_image_folder(tmp_path, classes=["NORMAL"])
    # beside class folders, an image directly in root is named and left out
    (tmp_path / "NORMAL").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "NORMAL" / "c.png")
    with pytest.warns(UserWarning, match="directly in root"):
        X, y = load_image_folder(tmp_path)
    assert X["study_id"].tolist() == ["NORMAL/c.png"] and y.tolist() == [0]
