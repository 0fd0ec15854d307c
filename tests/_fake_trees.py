"""Tiny data sets written in the published layouts of MIMIC-CXR, CheXpert Plus, IU/Open-i and
Kaggle image folders, for the loader tests (real file formats, 32 px images).

Each writer returns a dict describing what it wrote, so tests compare the loader's output with
what is on disk rather than with hard-coded numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

SIZE = 32
OBS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
       "Fracture", "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion",
       "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices"]


def gradient(seed: int = 0) -> np.ndarray:
    """A 32 x 32 uint8 image: a left-to-right ramp with a bright square at the top left."""
    img = np.tile(np.linspace(20, 200, SIZE), (SIZE, 1))
    img[2:8, 2:8] = 250
    img += seed % 5
    return img.astype(np.uint8)


def write_png(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient(seed)).save(path)


def write_jpg(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient(seed)).save(path, format="JPEG", quality=95)


def write_dcm(path: Path, *, photometric: str = "MONOCHROME2", view: str = "PA",
              seed: int = 0) -> None:
    """A 12-bit DICOM radiograph; with MONOCHROME1 the stored values are inverted (high = dark),
    so a correct reader shows the same picture as the MONOCHROME2 file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    pixels = gradient(seed).astype(np.uint16) * 16  # 12-bit range
    if photometric == "MONOCHROME1":
        pixels = 4095 - pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.ViewPosition = view
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def mimic_report(findings: str | None, impression: str | None) -> str:
    """A report laid out like MIMIC-CXR's sNNNNNNNN.txt files."""
    lines = ["                                 FINAL REPORT",
             " EXAMINATION:  CHEST (PA AND LAT)", "", " INDICATION:  ___ with cough", "",
             " COMPARISON:  None.", ""]
    if findings:
        lines += [" FINDINGS:", "", " " + findings, ""]
    if impression:
        lines += [" IMPRESSION:", "", " " + impression, ""]
    return "\n".join(lines)


# subject, study, [(dicom_id, view, photometric)], findings, impression, chexpert, negbio, labelled
MIMIC_STUDIES = [
    (10000001, 50000001, [("d1-pa", "PA", "MONOCHROME1"), ("d1-lat", "LATERAL", "MONOCHROME2")],
     "Focal consolidation in the right lower lobe.", "Right lower lobe pneumonia.", 1.0, 1.0, True),
    (10000001, 50000002, [("d2-ap", "AP", "MONOCHROME2")],
     "Lungs are clear.", "No acute cardiopulmonary process.", 0.0, 1.0, True),
    (10000002, 50000003, [("d3-lat", "LATERAL", "MONOCHROME2"), ("d3-pa", "PA", "MONOCHROME2")],
     "Hazy opacity at the left base.", "Pneumonia is possible.", -1.0, -1.0, True),
    (10000002, 50000004, [("d4-lat", "LATERAL", "MONOCHROME2")],
     "Lateral view only.", "No pneumonia.", 0.0, 0.0, True),
    (10000003, 50000005, [("d5-ap", "AP", "MONOCHROME2"), ("d5-pa", "PA", "MONOCHROME2")],
     "Heart size is normal.", "No acute process.", None, None, True),
    (10000004, 50000006, [("d6-pa", "PA", "MONOCHROME2")],
     None, None, 1.0, 1.0, True),  # no report file at all
    (11000005, 50000007, [("d7-pa", "PA", "MONOCHROME2")],
     "Small left pleural effusion.", None, 0.0, 0.0, True),  # FINDINGS only
    (11000006, 50000008, [("d8-pa", "PA", "MONOCHROME2")],
     "Clear lungs.", "Normal chest.", 0.0, 0.0, False),  # absent from the label CSVs
]


def write_mimic_tree(root: Path, *, formats: tuple[str, ...] = ("dcm",), reports: bool = True,
                     csvs: bool = True, gz: bool = True) -> dict:
    """MIMIC-CXR (dcm) / MIMIC-CXR-JPG (jpg) layout; ``reports=False`` leaves out the .txt files
    (as in MIMIC-CXR-JPG), ``csvs=False`` the label and metadata files."""
    meta, chexpert, negbio, split = [], [], [], []
    for seed, (subject, study, images, findings, impression, chx, neg, labelled) in \
            enumerate(MIMIC_STUDIES):
        pdir = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}"
        for dicom_id, view, photometric in images:
            if "dcm" in formats:
                write_dcm(pdir / f"s{study}" / f"{dicom_id}.dcm", photometric=photometric,
                          view=view, seed=seed)
            if "jpg" in formats:
                write_jpg(pdir / f"s{study}" / f"{dicom_id}.jpg", seed=seed)
            meta.append({"dicom_id": dicom_id, "subject_id": subject, "study_id": study,
                         "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
                         "ViewPosition": view, "Rows": SIZE, "Columns": SIZE})
            split.append({"dicom_id": dicom_id, "study_id": study, "subject_id": subject,
                          "split": "test" if subject == 10000003 else "train"})
        if reports and (findings or impression):
            pdir.mkdir(parents=True, exist_ok=True)
            (pdir / f"s{study}.txt").write_text(mimic_report(findings, impression))
        if labelled:
            row = {"subject_id": subject, "study_id": study, **{o: np.nan for o in OBS}}
            chexpert.append({**row, "Pneumonia": chx, "No Finding": 1.0 if chx == 0 else np.nan})
            negbio.append({**row, "Pneumonia": neg})
    if csvs:
        suffix = ".csv.gz" if gz else ".csv"
        pd.DataFrame(meta).to_csv(root / f"mimic-cxr-2.0.0-metadata{suffix}", index=False)
        pd.DataFrame(chexpert).to_csv(root / f"mimic-cxr-2.0.0-chexpert{suffix}", index=False)
        pd.DataFrame(negbio).to_csv(root / f"mimic-cxr-2.0.0-negbio{suffix}", index=False)
        pd.DataFrame(split).to_csv(root / f"mimic-cxr-2.0.0-split{suffix}", index=False)
    return {"studies": [s[1] for s in MIMIC_STUDIES], "root": root}


# path_to_image, frontal_lateral, ap_pa, findings, impression, pneumonia label, how it is stored
CHEXPERT_ROWS = [
    ("train/patient00001/study1/view1_frontal.jpg", "Frontal", "PA",
     "Right lower lobe airspace opacity.", "Findings consistent with pneumonia.", 1.0, "jpg"),
    ("train/patient00001/study1/view2_lateral.jpg", "Lateral", None,
     "Right lower lobe airspace opacity.", "Findings consistent with pneumonia.", 1.0, "jpg"),
    ("train/patient00001/study2/view1_frontal.jpg", "Frontal", "AP",
     "Hazy opacity.", "Cannot exclude pneumonia.", -1.0, "jpg"),
    ("train/patient00002/study1/view1_lateral.jpg", "Lateral", None,
     "Clear.", "No acute disease.", 0.0, "jpg"),
    ("valid/patient00003/study1/view1_frontal.jpg", "Frontal", "AP",
     "Mild cardiomegaly.", None, None, "jpg"),
    ("train/patient00004/study1/view1_frontal.jpg", "Frontal", "PA",
     "Clear lungs.", "Normal chest.", 0.0, "png_dir"),
    ("train/patient00005/study1/view1_frontal.jpg", "Frontal", "PA",
     None, None, 0.0, "jpg"),  # no report text at all
    ("train/patient00006/study1/view1_frontal.jpg", "Frontal", "PA",
     "Left basilar consolidation.", "Left lower lobe pneumonia.", 1.0, "dcm"),
]


def write_chexpert_plus_tree(root: Path) -> dict:
    rows, labels = [], []
    for seed, (rel, fl, appa, findings, impression, label, stored) in enumerate(CHEXPERT_ROWS):
        dcm = rel.rsplit(".", 1)[0] + ".dcm"
        if stored == "jpg":
            write_jpg(root / rel, seed=seed)
        elif stored == "png_dir":
            write_png(root / "PNG" / (rel.rsplit(".", 1)[0] + ".png"), seed=seed)
        else:
            write_dcm(root / "DICOM" / dcm, photometric="MONOCHROME1", seed=seed)
        patient = rel.split("/")[1]
        report = "\n".join(p for p in [f"FINDINGS: {findings}" if findings else "",
                                       f"IMPRESSION: {impression}" if impression else ""] if p)
        rows.append({"path_to_image": rel, "path_to_dcm": dcm, "frontal_lateral": fl,
                     "ap_pa": appa, "deid_patient_id": patient, "patient_report_date_order": 1,
                     "report": report or None, "section_narrative": None,
                     "section_findings": findings, "section_impression": impression,
                     "age": 60, "sex": "Female", "split": rel.split("/")[0]})
        labels.append({"path_to_image": rel, **{o: None for o in OBS}, "Pneumonia": label})
    pd.DataFrame(rows).to_csv(root / "df_chexpert_plus_240401.csv", index=False)
    (root / "chexbert_labels").mkdir()
    with open(root / "chexbert_labels" / "impression_fixed.json", "w") as fh:
        for row in labels:
            fh.write(json.dumps(row) + "\n")
    return {"rows": CHEXPERT_ROWS, "root": root}


# uid, [(image stem (Open-i name), projection)], findings, impression, labeler output
IU_STUDIES = [
    (1, [("CXR1_1_IM-0001-3001", "Frontal"), ("CXR1_1_IM-0001-4001", "Lateral")],
     "The cardiac silhouette and mediastinum size are within normal limits. Lungs are clear.",
     "Normal chest x-XXXX.", 0),
    (2, [("CXR2_1_IM-0652-2001", "Lateral"), ("CXR2_1_IM-0652-1001", "Frontal")],
     "Focal airspace disease in the right lower lobe.", "Right lower lobe pneumonia.", 1),
    (3, [("CXR3_1_IM-1384-2001", "Lateral")], "Lateral view only.", "No acute disease.", 0),
    (4, [("CXR4_1_IM-2050-1001", "Frontal"), ("CXR4_1_IM-2050-2001", "Lateral")],
     "Patchy left basilar opacity.", "Possible early pneumonia.", -1),
    (5, [("CXR5_1_IM-2117-1003002", "Frontal")], "", "", 0),  # no text
    (6, [], "Heart size normal.", "No acute findings.", 0),  # a report without images
]


def _kaggle_name(stem: str) -> str:
    """CXR1_1_IM-0001-3001 -> 1_IM-0001-3001.dcm.png (the Kaggle export's file name)."""
    uid, _, rest = stem[3:].split("_", 2)
    return f"{uid}_{rest}.dcm.png"


def write_iu_tree(root: Path, *, form: str = "xml", projections: bool = True) -> dict:
    """The Open-i download (``form="xml"``) or the Kaggle CSV export (``form="csv"``)."""
    proj, reports, labels = [], [], []
    for seed, (uid, images, findings, impression, label) in enumerate(IU_STUDIES):
        for stem, view in images:
            if form == "xml":
                write_png(root / "images" / f"{stem}.png", seed=seed)
            else:
                write_png(root / "images" / "images_normalized" / _kaggle_name(stem), seed=seed)
            proj.append({"uid": uid, "filename": _kaggle_name(stem), "projection": view})
        reports.append({"uid": uid, "MeSH": "normal", "Problems": "normal",
                        "image": "Xray Chest PA and Lateral", "indication": "Cough.",
                        "comparison": "None.", "findings": findings or None,
                        "impression": impression or None})
        labels.append({"uid": uid, "chexpert_pneumonia": label,
                       "negbio_pneumonia": 1 if label else 0})
        if form == "xml":
            (root / "ecgen-radiology").mkdir(parents=True, exist_ok=True)
            parents = "".join(
                f'<parentImage id="{stem}"><figureId>F{i + 1}</figureId><caption>Xray Chest PA '
                f'and Lateral</caption><panel type="single"><url>/hadoop/storage/radiology/'
                f'extract/{stem}.jpg</url></panel></parentImage>' for i, (stem, _) in
                enumerate(images))
            xml = (f'<?xml version="1.0" encoding="utf-8"?>\n<eCitation><meta type="rr"/>'
                   f'<uId id="CXR{uid}"/><pmcId id="{uid}"/><docSource>CXR</docSource>'
                   f'<IUXRId id="{uid}"/><MedlineCitation Owner="Indiana University"><Article>'
                   f'<ArticleTitle>Indiana University Chest X-ray Collection</ArticleTitle>'
                   f'<Abstract><AbstractText Label="COMPARISON">None.</AbstractText>'
                   f'<AbstractText Label="INDICATION">Cough.</AbstractText>'
                   f'<AbstractText Label="FINDINGS">{findings}</AbstractText>'
                   f'<AbstractText Label="IMPRESSION">{impression}</AbstractText></Abstract>'
                   f'</Article></MedlineCitation><MeSH><major>normal</major></MeSH>{parents}'
                   f'</eCitation>')
            (root / "ecgen-radiology" / f"{uid}.xml").write_text(xml)
    if form == "csv":
        pd.DataFrame(reports).to_csv(root / "indiana_reports.csv", index=False)
    if projections or form == "csv":
        pd.DataFrame(proj).to_csv(root / "indiana_projections.csv", index=False)
    pd.DataFrame(labels).to_csv(root / "iu_labels.csv", index=False)
    return {"root": root, "studies": [s[0] for s in IU_STUDIES]}


FOLDER_FILES = [
    "train/NORMAL/IM-0115-0001.jpeg",
    "train/NORMAL/NORMAL2-IM-1427-0001.jpeg",
    "train/PNEUMONIA/person1_bacteria_1.jpeg",
    "train/PNEUMONIA/person1_virus_6.jpeg",
    "train/PNEUMONIA/person2_bacteria_3.png",
    "test/NORMAL/IM-0001-0001.jpeg",
    "test/PNEUMONIA/person100_bacteria_475.jpeg",
    "test/PNEUMONIA/person101_virus_188.dcm",
]


def write_image_folder(root: Path) -> dict:
    for seed, rel in enumerate(FOLDER_FILES):
        path = root / rel
        if rel.endswith(".dcm"):
            write_dcm(path, photometric="MONOCHROME1", seed=seed)
        elif rel.endswith(".png"):
            write_png(path, seed=seed)
        else:
            write_jpg(path, seed=seed)
    # Archive debris and a non-image file that the loader must ignore.
    write_jpg(root / "__MACOSX" / "train" / "NORMAL" / "._IM-0115-0001.jpeg")
    (root / "train" / "NORMAL" / "notes.txt").write_text("not an image")
    return {"root": root, "files": FOLDER_FILES}
