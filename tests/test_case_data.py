"""Case-study loaders: checksums, tampered files rejected, clear errors offline, German credit decoding."""
from __future__ import annotations

import http.server
import os
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lepton_lib.data import ChecksumError, DataUnavailableError
from lepton_lib.data.movielens import MOVIELENS_100K_FILES, load_movielens_100k
from lepton_lib.data.tabular import load_breast_cancer, load_german_credit, parse_german_doc

SHARED = Path(os.environ["LEPTON_DATA_DIR"]) if os.environ.get("LEPTON_DATA_DIR") else None


def _shared(folder: str) -> Path:
    if SHARED is None or not (SHARED / folder).is_dir():
        pytest.skip(f"needs LEPTON_DATA_DIR with {folder}/ (a prepared data folder)")
    return SHARED / folder


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No data directory, an empty cache, downloads allowed unless a test forbids them."""
    monkeypatch.delenv("LEPTON_DATA_DIR", raising=False)
    monkeypatch.delenv("LEPTON_OFFLINE", raising=False)
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


# ------------------------------------------------------------------------------ German credit
def test_german_credit_decodes_the_first_applicant() -> None:
    _shared("german_credit")
    data = load_german_credit()
    # german.data row 1: A11 6 A34 A43 1169 A65 A75 4 A93 A101 4 A121 67 A143 A152 2 A173 1 A192 A201 1
    first = {name: column[0] for name, column in data.columns.items()}
    assert first["Status of existing checking account"] == "... < 0 DM"
    assert first["Duration in month"] == 6
    assert first["Credit history"] == "critical account/ other credits existing (not at this bank)"
    assert first["Purpose"] == "radio/television"
    assert first["Credit amount"] == 1169
    assert first["Personal status and sex"] == "male : single"
    assert first["Age in years"] == 67
    assert first["foreign worker"] == "yes"
    assert (data.y[0], data.sex[0], data.foreign_worker[0]) == (0, "male", True)


def test_german_credit_counts_match_the_raw_codes() -> None:
    folder = _shared("german_credit")
    data = load_german_credit()
    rows = [line.split() for line in (folder / "german.data").read_text().splitlines() if line.strip()]
    assert data.X.shape[0] == len(rows) == 1000
    assert int(data.y.sum()) == sum(row[20] == "2" for row in rows) == 300
    assert int((data.sex == "female").sum()) == sum(row[8] in ("A92", "A95") for row in rows)
    assert int((~data.foreign_worker).sum()) == sum(row[19] == "A202" for row in rows)
    # one-hot blocks: each qualitative attribute contributes exactly one 1 per row
    assert data.X.shape[1] == len(data.feature_names)
    purpose = [i for i, name in enumerate(data.feature_names) if name.startswith("Purpose = ")]
    np.testing.assert_array_equal(data.X[:, purpose].sum(1), np.ones(1000))
    assert data.cost_matrix.tolist() == [[0.0, 1.0], [5.0, 0.0]]


def test_german_doc_parser_joins_continued_lines() -> None:
    folder = _shared("german_credit")
    names, kinds, codes = parse_german_doc((folder / "german.doc").read_text(encoding="latin-1"))
    assert len(names) == 20 and kinds.count("numerical") == 7
    assert codes["A13"] == "... >= 200 DM / salary assignments for at least 1 year"
    assert codes["A410"] == "others"
    assert codes["A202"] == "no"
    with pytest.raises(ValueError, match="expected 20 attributes"):
        parse_german_doc("Attribute 1:  (qualitative)\n\tStatus\n\tA11 : low\n")


def test_german_credit_tampered_file_is_rejected(no_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _shared("german_credit")
    copy = no_data / "data"
    shutil.copytree(source, copy / "german_credit")
    (copy / "german_credit" / "german.data").write_bytes(
        (source / "german.data").read_bytes().replace(b"A11 6", b"A12 6", 1))
    monkeypatch.setenv("LEPTON_DATA_DIR", str(copy))
    with pytest.raises(ChecksumError, match="german_credit/german.data"):
        load_german_credit()


def test_breast_cancer_has_malignant_as_one() -> None:
    data = load_breast_cancer()
    assert data.X.shape == (569, 30)
    assert int(data.y.sum()) == 212  # 212 malignant, 357 benign (the data set's description)


# ------------------------------------------------------------------------------- MovieLens
def test_movielens_loads_and_counts() -> None:
    _shared("movielens_100k")
    data = load_movielens_100k(offline=True)
    assert len(data.users) == 100_000 and data.num_users == 943 and data.num_items == 1682
    assert data.users.min() == 0 and data.items.max() == 1681
    assert np.bincount(data.ratings, minlength=6)[1:].tolist() == [6110, 11370, 27145, 34174, 21201]
    assert data.titles[0] == "Toy Story (1995)"
    assert data.genres.shape == (1682, 19) and data.genres[0, 3]  # Toy Story is an animation


def test_movielens_tampered_file_is_rejected(no_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _shared("movielens_100k")
    copy = no_data / "data" / "movielens_100k"
    copy.mkdir(parents=True)
    for member in MOVIELENS_100K_FILES:
        shutil.copy(source / member, copy / member)
    with open(copy / "u.data", "ab") as f:
        f.write(b"1\t1\t5\t881250949\n")
    monkeypatch.setenv("LEPTON_DATA_DIR", str(no_data / "data"))
    with pytest.raises(ChecksumError, match="movielens_100k/u.data"):
        load_movielens_100k(offline=True)


def test_movielens_offline_without_data_is_a_clear_error(no_data: Path) -> None:
    with pytest.raises(DataUnavailableError, match="GroupLens"):
        load_movielens_100k(offline=True)


def _serve(root: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.mark.parametrize("tamper", [False, True])
def test_movielens_download_checks_extracted_members(no_data: Path, tamper: bool) -> None:
    # A local server stands in for GroupLens, serving a zip laid out as ml-100k.zip is.
    source = _shared("movielens_100k")
    www = no_data / "www"
    www.mkdir()
    with zipfile.ZipFile(www / "ml-100k.zip", "w") as zipped:
        for member in MOVIELENS_100K_FILES:
            payload = (source / member).read_bytes()
            if tamper and member == "u.item":
                payload = payload.replace(b"Toy Story", b"Toy Storm", 1)
            zipped.writestr(f"ml-100k/{member}", payload)
    httpd = _serve(www)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/ml-100k.zip"
    try:
        if tamper:
            with pytest.raises(ChecksumError, match="movielens_100k/u.item"):
                load_movielens_100k(url=url, offline=False)
        else:
            data = load_movielens_100k(url=url, offline=False)
            assert len(data.ratings) == 100_000
            assert (no_data / "cache" / "movielens_100k" / "u.user").is_file()
            httpd.shutdown()  # now served from the cache alone
            assert load_movielens_100k(url=url, offline=True).titles[0] == "Toy Story (1995)"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_movielens_download_failure_is_a_clear_error(no_data: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataUnavailableError, match="grouplens.org"):
        load_movielens_100k(url=f"http://127.0.0.1:{port}/ml-100k.zip", offline=False)
