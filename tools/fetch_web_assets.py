"""Put MathJax, mermaid and the widget manager into `_web_assets/vendor/` so the built book needs no CDN.

Both come from the npm registry as pinned release tarballs, checked against the
registry's sha512 integrity value, cached (pooch) and unpacked at build time; none
of their files is committed. Run by `make book` and `make test`.
"""
from __future__ import annotations

import base64
import fnmatch
import shutil
import sys
import tarfile
from pathlib import Path

import pooch

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "_web_assets" / "vendor"

# name: (tarball url, npm integrity, members to keep: paths or globs inside the package; a
# trailing "/" keeps a whole folder)
PACKAGES = {
    "mathjax": (
        "https://registry.npmjs.org/mathjax/-/mathjax-3.2.2.tgz",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        ("es5/tex-mml-chtml.js", "es5/input/", "es5/output/chtml/", "es5/a11y/", "es5/ui/", "es5/adaptors/"),
    ),
    "mermaid": (
        "https://registry.npmjs.org/mermaid/-/mermaid-11.4.1.tgz",
        "sha512-Mb01JT/x6CKDWaxigwfZYuYmDZ6xtrNwNlidKZwkSrDaY9n90tdrJTV5Umk+wP1fZscGptmKFXHsXMDEVZ+Q6A==",
        ("dist/mermaid.min.js",),
    ),
    "requirejs": (
        "https://registry.npmjs.org/requirejs/-/requirejs-2.3.8.tgz",
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        ("require.js",),
    ),
    # Laid out as <cdn>/@jupyter-widgets/html-manager/dist/; _ext/lepton_offline.py points
    # <cdn> (and require's baseUrl) at this folder. The manager's icon fonts are requested
    # from <cdn>/@jupyter-widgets/, so main() also puts a copy of them there.
    "@jupyter-widgets/html-manager": (
        "https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz",
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        ("dist/embed-amd.js", "dist/*.woff", "dist/*.woff2", "dist/*.ttf", "dist/*.eot", "dist/*.svg"),
    ),
}


def integrity_to_hex(integrity: str) -> str:
    algo, b64 = integrity.split("-", 1)
    assert algo == "sha512", integrity
    return base64.b64decode(b64).hex()


def _kept(path: str, keep: tuple[str, ...]) -> bool:
    return any(path.startswith(k) if k.endswith("/") else fnmatch.fnmatch(path, k) for k in keep)


def install(name: str, url: str, integrity: str, keep: tuple[str, ...]) -> Path:
    dest = VENDOR / name
    stamp = dest / ".source"
    wanted = f"{url} {' '.join(keep)}"
    if stamp.is_file() and stamp.read_text() == wanted:
        return dest
    tarball = pooch.retrieve(url, known_hash=f"sha512:{integrity_to_hex(integrity)}", progressbar=False,
                             path=pooch.os_cache("lepton_book") / "web")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and m.name.startswith("package/") and _kept(m.name[len("package/"):], keep)]
        for member in members:
            member.name = member.name[len("package/"):]
        tar.extractall(tmp, members=members, filter="data")
    (tmp / ".source").write_text(wanted)
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
    copy_widget_fonts()
    return 0


def copy_widget_fonts() -> None:
    """Put the widget manager's fonts where its stylesheet asks for them.

    The manager's CSS names each font by a path relative to the AMD module that loaded it,
    ``<baseUrl>/@jupyter-widgets/<hash>.woff2``, one folder above ``html-manager/dist/``. A
    widget that shows an icon (the play button of ``ipywidgets.Play``, for one) fetches them.
    """
    dist = VENDOR / "@jupyter-widgets" / "html-manager" / "dist"
    for font in dist.iterdir():
        if font.suffix in {".woff", ".woff2", ".ttf", ".eot", ".svg"}:
            shutil.copyfile(font, dist.parent.parent / font.name)


if __name__ == "__main__":
    raise SystemExit(main())
