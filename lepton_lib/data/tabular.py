"""Two small tabular data sets for the case studies: German credit and Wisconsin breast cancer.

* Statlog German Credit (Hofmann 1994, UCI, doi:10.24432/C5NC77): 1,000 loan applicants,
  20 attributes, 700 judged good risks and 300 bad. The categorical attributes are stored as
  codes (``A11`` .. ``A202``); :func:`load_german_credit` decodes them with the descriptions in
  the data set's own ``german.doc``, one-hot encodes them for a model, and keeps the sensitive
  attributes (age, sex and marital status, foreign worker) apart for a fairness check. The
  documentation also fixes a cost matrix: accepting a bad applicant costs 5, rejecting a
  good one costs 1.
* Breast Cancer Wisconsin (Diagnostic) (Street, Wolberg & Mangasarian 1993): 569 tumours, 30
  features of cell nuclei measured on images of fine-needle aspirates, from scikit-learn's
  bundled copy (no download). Here label 1 means malignant, the condition to detect
  (scikit-learn's own copy uses 0 for malignant).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .download import fetch

__all__ = ["GermanCredit", "load_german_credit", "parse_german_doc", "BreastCancer", "load_breast_cancer",
           "GERMAN_COST_MATRIX"]

# Rows: true class (0 = good, 1 = bad); columns: decision (0 = accept as good, 1 = reject as bad).
GERMAN_COST_MATRIX = np.array([[0.0, 1.0], [5.0, 0.0]])

_ATTRIBUTE = re.compile(r"^Att[a-z]*bute\s+(\d+):\s*\((qualitative|numerical)\)\s*$")
_CODE = re.compile(r"^\s*(A\d+)\s*:\s*(.*?)\s*$")


def parse_german_doc(text: str) -> tuple[list[str], list[str], dict[str, str]]:
    """Attribute names, kinds ("qualitative"/"numerical") and ``{code: description}`` from ``german.doc``.

    A description that continues on the next line (``A13 : ... >= 200 DM /`` then ``salary
    assignments ...``) is joined with a space. The file misspells one heading "Attibute"; the
    pattern accepts it.
    """
    names: list[str] = []
    kinds: list[str] = []
    codes: dict[str, str] = {}
    section = text.split("8.  Cost Matrix")[0]  # the attribute list ends where the cost matrix starts
    lines = section.split("\n")
    last_code = None
    expect_name = False
    for line in lines:
        heading = _ATTRIBUTE.match(line.strip())
        if heading:
            if int(heading.group(1)) != len(names) + 1:
                raise ValueError(f"german.doc: attribute {heading.group(1)} out of order (expected {len(names) + 1})")
            kinds.append(heading.group(2))
            expect_name, last_code = True, None
            continue
        if expect_name and line.strip():
            names.append(line.strip())
            expect_name = False
            continue
        code = _CODE.match(line)
        if code and names:
            last_code = code.group(1)
            codes[last_code] = code.group(2)
        elif last_code and line.strip():
            codes[last_code] = f"{codes[last_code]} {line.strip()}"
        elif not line.strip():
            last_code = None
    if len(names) != 20:
        raise ValueError(f"german.doc: expected 20 attributes, parsed {len(names)}")
    return names, kinds, {code: re.sub(r"\s+", " ", description) for code, description in codes.items()}


@dataclass(frozen=True)
class GermanCredit:
    """Decoded German credit data; ``y`` is 1 for a bad credit risk (the class a lender must catch)."""

    attribute_names: list[str]  # the 20 names from german.doc
    columns: dict[str, np.ndarray]  # name -> (1000,) decoded strings (qualitative) or int64 (numerical)
    X: np.ndarray  # (1000, F) float64: numerical attributes as they are, qualitative ones one-hot
    feature_names: list[str]  # F names, "attribute = category" for the one-hot columns
    y: np.ndarray  # (1000,) int64: 1 = bad, 0 = good
    sex: np.ndarray  # (1000,) "male" / "female", from "Personal status and sex"
    age: np.ndarray  # (1000,) int64 years
    foreign_worker: np.ndarray  # (1000,) bool
    cost_matrix: np.ndarray  # GERMAN_COST_MATRIX


def load_german_credit() -> GermanCredit:
    """Read ``german.data`` and ``german.doc`` (sha256-checked) and decode every code."""
    names, kinds, codes = parse_german_doc(fetch("german_credit/german.doc").read_text(encoding="latin-1"))
    rows = [line.split() for line in fetch("german_credit/german.data").read_text(encoding="latin-1").split("\n")
            if line.strip()]
    if any(len(row) != 21 for row in rows):
        raise ValueError(f"german.data: every row must have 21 fields, got lengths {sorted({len(r) for r in rows})}")
    columns: dict[str, np.ndarray] = {}
    blocks, feature_names = [], []
    for index, (name, kind) in enumerate(zip(names, kinds)):
        raw = [row[index] for row in rows]
        if kind == "numerical":
            values = np.array(raw, dtype=np.int64)
            columns[name] = values
            blocks.append(values[:, None].astype(np.float64))
            feature_names.append(name)
            continue
        unknown = sorted(set(raw) - set(codes))
        if unknown:
            raise ValueError(f"german.data: attribute {name!r} has codes {unknown} that german.doc does not describe")
        values = np.array([codes[c] for c in raw])
        columns[name] = values
        # One column per code that occurs, in the documentation's order (A40, A41, ..., A410).
        present = [c for c in codes if c in set(raw)]
        blocks.append(np.stack([np.array(raw) == c for c in present], axis=1).astype(np.float64))
        feature_names += [f"{name} = {codes[c]}" for c in present]
    labels = np.array([row[20] for row in rows], dtype=np.int64)
    if set(labels.tolist()) != {1, 2}:
        raise ValueError(f"german.data: the class must be 1 (good) or 2 (bad), got {sorted(set(labels.tolist()))}")
    status = columns["Personal status and sex"]
    return GermanCredit(
        attribute_names=names, columns=columns, X=np.concatenate(blocks, axis=1), feature_names=feature_names,
        y=labels - 1, sex=np.array([s.split(":")[0].strip() for s in status]), age=columns["Age in years"],
        foreign_worker=columns["foreign worker"] == "yes", cost_matrix=GERMAN_COST_MATRIX.copy(),
    )


@dataclass(frozen=True)
class BreastCancer:
    X: np.ndarray  # (569, 30) float64
    y: np.ndarray  # (569,) int64: 1 = malignant, 0 = benign
    feature_names: list[str]


def load_breast_cancer() -> BreastCancer:
    """scikit-learn's bundled Breast Cancer Wisconsin (Diagnostic) data, with 1 = malignant."""
    from sklearn.datasets import load_breast_cancer as sklearn_breast_cancer

    bunch = sklearn_breast_cancer()
    malignant = list(bunch.target_names).index("malignant")
    return BreastCancer(bunch.data.astype(np.float64), (bunch.target == malignant).astype(np.int64),
                        list(bunch.feature_names))
