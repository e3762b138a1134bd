"""Put MathJax and mermaid into `_static/vendor/` so the built book needs no CDN.

Both come from the npm registry as pinned release tarballs, checked against the
registry's sha512 integrity value, cached (pooch) and unpacked at build time; none
of their files is committed. Run by `make book` and `make test`.
"""
from __future__ import annotations

import base64
import shutil
import sys
import tarfile
from pathlib import Path

import pooch

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "_static" / "vendor"

# name: (tarball url, npm integrity, members to keep (prefixes inside package/), folder)
PACKAGES = {
    "mathjax": (
        "https://registry.npmjs.org/mathjax/-/mathjax-3.2.2.tgz",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        ("es5/tex-mml-chtml.js", "es5/input/", "es5/output/chtml", "es5/a11y/", "es5/ui/", "es5/adaptors/"),
    ),
    "mermaid": (
        "https://registry.npmjs.org/mermaid/-/mermaid-11.4.1.tgz",
        "sha512-Mb01JT/x6CKDWaxigwfZYuYmDZ6xtrNwNlidKZwkSrDaY9n90tdrJTV5Umk+wP1fZscGptmKFXHsXMDEVZ+Q6A==",
        ("dist/mermaid.esm.min.mjs", "dist/chunks/mermaid.esm.min/"),
    ),
}


def integrity_to_hex(integrity: str) -> str:
    algo, b64 = integrity.split("-", 1)
    assert algo == "sha512", integrity
    return base64.b64decode(b64).hex()


def install(name: str, url: str, integrity: str, keep: tuple[str, ...]) -> Path:
    dest = VENDOR / name
    stamp = dest / ".source"
    if stamp.is_file() and stamp.read_text() == url:
        return dest
    tarball = pooch.retrieve(url, known_hash=f"sha512:{integrity_to_hex(integrity)}", progressbar=False,
                             path=pooch.os_cache("lepton_book") / "web")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and m.name.startswith("package/") and m.name[len("package/"):].startswith(keep)]
        for member in members:
            member.name = member.name[len("package/"):]
        tar.extractall(tmp, members=members, filter="data")
    (tmp / ".source").write_text(url)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)  # swap in whole, so a half-unpacked folder is never used
    return dest


def main() -> int:
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name, (url, integrity, keep) in PACKAGES.items():
        try:
            path = install(name, url, integrity, keep)
        except Exception as err:  # noqa: BLE001 - report any failure with the package named
            print(f"fetch_web_assets: could not get {name} from {url}: {err}", file=sys.stderr)
            return 1
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        print(f"web assets: {name} ready in {path.relative_to(ROOT)} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
