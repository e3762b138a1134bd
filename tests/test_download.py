"""The downloader's happy path and every error path, without the internet.

A throw-away HTTP server on 127.0.0.1 stands in for the canonical host.
"""
from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

from lepton_lib.core import sha256_of
from lepton_lib.data import REGISTRY, ChecksumError, DataUnavailableError, RemoteFile, fetch

PAYLOAD = b"node,label\n0,1\n1,0\n"
GOOD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server(tmp_path: Path):
    """Serve ``tmp_path/www`` on a free loopback port; yields the base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "good.csv").write_bytes(PAYLOAD)
    (root / "tampered.csv").write_bytes(PAYLOAD + b"2,1\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):  # keep pytest output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LEPTON_DATA_DIR", raising=False)
    monkeypatch.delenv("LEPTON_OFFLINE", raising=False)
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path / "cache"))


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/missing.csv"  # nothing listens there once the socket is closed


def test_download_verifies_and_caches(server: str, tmp_path: Path) -> None:
    file = RemoteFile("toy/good.csv", f"{server}/good.csv", GOOD_SHA)
    path = fetch(file)
    assert path == tmp_path / "cache" / "toy" / "good.csv"
    assert path.read_bytes() == PAYLOAD
    # A second fetch must come from the cache: point the URL nowhere to prove it.
    again = fetch(RemoteFile(file.name, closed_port_url(), GOOD_SHA))
    assert again == path


def test_data_dir_is_read_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prepared = tmp_path / "prepared" / "toy"
    prepared.mkdir(parents=True)
    (prepared / "good.csv").write_bytes(PAYLOAD)
    monkeypatch.setenv("LEPTON_DATA_DIR", str(tmp_path / "prepared"))
    path = fetch(RemoteFile("toy/good.csv", closed_port_url(), GOOD_SHA))
    assert path == prepared / "good.csv"


def test_bad_checksum_in_data_dir_names_file_hash_and_variable(tmp_path: Path, monkeypatch) -> None:
    prepared = tmp_path / "prepared" / "toy"
    prepared.mkdir(parents=True)
    (prepared / "good.csv").write_bytes(b"not the published bytes")
    monkeypatch.setenv("LEPTON_DATA_DIR", str(tmp_path / "prepared"))
    with pytest.raises(ChecksumError) as err:
        fetch(RemoteFile("toy/good.csv", closed_port_url(), GOOD_SHA))
    message = str(err.value)
    assert "toy/good.csv" in message and GOOD_SHA in message and "LEPTON_DATA_DIR" in message


def test_bad_checksum_in_cache_is_reported(tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "toy"
    cached.mkdir(parents=True)
    (cached / "good.csv").write_bytes(b"truncated")
    with pytest.raises(ChecksumError, match=GOOD_SHA):
        fetch(RemoteFile("toy/good.csv", closed_port_url(), GOOD_SHA))


def test_tampered_download_is_rejected_and_not_kept(server: str, tmp_path: Path) -> None:
    with pytest.raises(ChecksumError, match="toy/tampered.csv"):
        fetch(RemoteFile("toy/tampered.csv", f"{server}/tampered.csv", GOOD_SHA))
    leftovers = list((tmp_path / "cache").rglob("*")) if (tmp_path / "cache").exists() else []
    assert [p for p in leftovers if p.is_file()] == []


def test_missing_file_offline_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEPTON_OFFLINE", "1")
    with pytest.raises(DataUnavailableError) as err:
        fetch(RemoteFile("toy/good.csv", "https://example.org/good.csv", GOOD_SHA))
    message = str(err.value)
    assert "toy/good.csv" in message and GOOD_SHA in message and "LEPTON_DATA_DIR" in message
    assert "https://example.org/good.csv" in message


def test_no_network_gives_clear_error(tmp_path: Path) -> None:
    url = closed_port_url()
    with pytest.raises(DataUnavailableError) as err:
        fetch(RemoteFile("toy/good.csv", url, GOOD_SHA))
    message = str(err.value)
    assert "download failed" in message and url in message and "LEPTON_DATA_DIR" in message
    assert not (tmp_path / "cache" / "toy" / "good.csv").exists()


def test_missing_from_server_gives_clear_error(server: str) -> None:
    with pytest.raises(DataUnavailableError, match="HTTPError"):
        fetch(RemoteFile("toy/absent.csv", f"{server}/absent.csv", GOOD_SHA))


def test_unknown_registry_name() -> None:
    with pytest.raises(ValueError, match="'cora/ind.cora.nope'"):
        fetch("cora/ind.cora.nope")


PREPARED = os.environ.get("LEPTON_DATA_DIR")  # read before the fixture above clears it


@pytest.mark.skipif(not PREPARED, reason="LEPTON_DATA_DIR is not set")
def test_registry_matches_the_prepared_data() -> None:
    """Every file of the prepared data directory that the registry names has the registered sha256."""
    root = Path(PREPARED)
    for file in REGISTRY.values():
        local = root / file.name
        if local.is_file():
            assert sha256_of(local) == file.sha256, file.name
        assert file.url.startswith("https://"), file.name
    names = {f.name for f in REGISTRY.values()}
    assert {"cora/ind.cora.x", "citeseer/ind.citeseer.graph", "sst2/dev.tsv", "tiny_shakespeare/input.txt"} <= names
