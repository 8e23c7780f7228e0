"""DuckDB-WASM for the site's SQL page: from the npm registry, cached, vendored at build time.

The SQL page runs DuckDB compiled to WebAssembly in the reader's browser. Its files
come from two npm packages, pinned by version and by the registry's own sha512
(``dist.integrity``), so a cached or fetched tarball is checked before any byte of it
reaches a site:

- ``@duckdb/duckdb-wasm`` (MIT): the module, its worker and the ``eh`` WebAssembly
  build (WebAssembly exceptions: every current browser);
- ``apache-arrow`` (Apache-2.0): the Arrow library the module imports, as the UMD
  bundle that sets ``globalThis.Arrow`` (the module's two ``import * as X from
  "apache-arrow"`` are rewritten to read it, so the page needs no bundler and no
  import map).

Where the tarballs come from, in order: the cache folder (``CATALOG_ASSET_CACHE``,
else ``$XDG_CACHE_HOME/model-catalog/npm``, else ``~/.cache/model-catalog/npm``),
then ``npm pack`` into that folder (the npm registry, through the user's own npm
configuration: proxy, mirror, credentials). Neither: :class:`SiteAssetsUnavailable`,
one line saying what to run where the registry is reachable. The site itself never
loads anything from the internet: the files are copied into it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SiteAssetsUnavailable


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str                     # the npm registry's dist.integrity (sha512, base64)
    files: tuple[tuple[str, str], ...]  # (path in the tarball, path in the site's vendor folder)

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        """The file name ``npm pack`` gives this package's tarball."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


DUCKDB_WASM = Package(
    "@duckdb/duckdb-wasm", "1.32.0",
    "sha512-IewXTNYEjsZCPE9weUWgtjGxUlMRo7qhX0GF6tq/KjK8bnY+RAl4cyUdYUfcdzbyb4b9ZxPC+FOsCcxgaKFWMg==",
    (
        ("package/dist/duckdb-browser.mjs", "duckdb-browser.js"),  # .js: every static host serves it as JavaScript
        ("package/dist/duckdb-browser-eh.worker.js", "duckdb-browser-eh.worker.js"),
        ("package/dist/duckdb-eh.wasm", "duckdb-eh.wasm"),
        ("package/package.json", "duckdb-wasm.package.json"),
    ),
)
APACHE_ARROW = Package(
    "apache-arrow", "17.0.0",
    "sha512-X0p7auzdnGuhYMVKYINdQssS4EcKec9TCXyez/qtJt32DrIMGbzqiaMiQ0X6fQlQpw8Fl0Qygcv4dfRAr5Gu9Q==",
    (
        ("package/Arrow.es2015.min.js", "arrow.min.js"),
        ("package/LICENSE.txt", "arrow.LICENSE.txt"),
        ("package/NOTICE.txt", "arrow.NOTICE.txt"),
    ),
)
PACKAGES = (DUCKDB_WASM, APACHE_ARROW)

# The module's imports of Arrow, and what reads the global the UMD bundle set instead.
_ARROW_IMPORT = 'import*as {name} from"apache-arrow";'
_ARROW_GLOBAL = "const {name}=globalThis.Arrow;"


def cache_dir() -> Path:
    """Where fetched tarballs are kept (``CATALOG_ASSET_CACHE`` wins)."""
    own = os.environ.get("CATALOG_ASSET_CACHE")
    if own:
        return Path(own)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "model-catalog" / "npm"


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _fetch_command(package: Package, folder: Path) -> str:
    return f"npm pack {package.spec} --pack-destination {folder}"


def tarball(package: Package, cache: Path | None = None) -> bytes:
    """The package's tarball, checked against its pinned integrity: from the cache, else ``npm pack``."""
    folder = cache or cache_dir()
    path = folder / package.tarball
    if path.is_file():
        data = path.read_bytes()
        if _sri(data) == package.integrity:
            return data
        path.unlink()  # ours (named by npm pack) and not the pinned bytes: fetch again
    npm = shutil.which("npm")
    detail = "npm is not installed"
    if npm is not None:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as tmp:
            done = subprocess.run([npm, "pack", package.spec, "--pack-destination", tmp, "--silent"],
                                  capture_output=True, text=True, timeout=600)
            got = Path(tmp) / package.tarball
            if done.returncode == 0 and got.is_file():
                data = got.read_bytes()
                if _sri(data) != package.integrity:
                    raise SiteAssetsUnavailable(
                        package=package.spec, cache=str(folder), command=_fetch_command(package, folder),
                        detail="the registry's tarball does not match the pinned sha512")
                os.replace(got, path)
                return data
            lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
            detail = f"npm pack failed: {lines[-1].strip() if lines else f'exit {done.returncode}'}"
    raise SiteAssetsUnavailable(package=package.spec, cache=str(folder), command=_fetch_command(package, folder),
                                detail=detail)


def _patched_module(text: str) -> str:
    """The DuckDB-WASM module with its imports of ``apache-arrow`` reading ``globalThis.Arrow``."""
    count = 0
    for name in sorted(set(_names(text))):
        before = _ARROW_IMPORT.format(name=name)
        count += text.count(before)
        text = text.replace(before, _ARROW_GLOBAL.format(name=name))
    if count == 0 or 'from"apache-arrow"' in text:
        raise SiteAssetsUnavailable(package=DUCKDB_WASM.spec, cache=str(cache_dir()), command="(none)",
                                    detail="its module imports apache-arrow in a way this catalog does not know")
    return text


def _names(text: str) -> list[str]:
    return re.findall(r'import\*as ([A-Za-z_$][\w$]*) from"apache-arrow";', text)


def vendor_files(cache: Path | None = None) -> dict[str, bytes]:
    """The files the SQL page needs (path in the vendor folder → bytes), from the checked tarballs."""
    out: dict[str, bytes] = {}
    for package in PACKAGES:
        data = tarball(package, cache)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member, name in package.files:
                handle = tar.extractfile(member)
                if handle is None:
                    raise SiteAssetsUnavailable(package=package.spec, cache=str(cache or cache_dir()),
                                                command="(none)", detail=f"its tarball has no {member}")
                out[name] = handle.read()
    out["duckdb-browser.js"] = _patched_module(out["duckdb-browser.js"].decode("utf-8")).encode("utf-8")
    out["NOTICE.txt"] = (
        f"{DUCKDB_WASM.spec} (MIT, https://github.com/duckdb/duckdb-wasm) and {APACHE_ARROW.spec} "
        "(Apache-2.0, see arrow.LICENSE.txt and arrow.NOTICE.txt), from the npm registry, pinned by sha512.\n"
        "duckdb-browser.js is the package's dist/duckdb-browser.mjs with its imports of apache-arrow reading\n"
        "globalThis.Arrow (set by arrow.min.js, the package's Arrow.es2015.min.js).\n"
    ).encode("utf-8")
    return out


_LAYOUT = 1  # bump when vendor_files() changes what it makes of the tarballs


def vendor_folder(cache: Path | None = None) -> tuple[Path, dict[str, str]]:
    """The vendored files unpacked once into the cache (folder, name → sha256), so that a build
    copies or links them instead of unpacking 35 MB again; made from the checked tarballs."""
    root = cache or cache_dir()
    folder = root / f"site-duckdb-wasm-{DUCKDB_WASM.version}-arrow-{APACHE_ARROW.version}-{_LAYOUT}"
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and all(
                isinstance(v, str) and (folder / k).is_file() for k, v in manifest.items()):
            return folder, manifest
    except (OSError, ValueError):
        pass
    files = vendor_files(cache)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".unpack-"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        manifest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)  # ours (its name is ours, in our cache) and incomplete
        os.rename(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder, manifest


def place(name: str, folder: Path, sha256: str, target: Path, previous: Path | None) -> None:
    """Put the vendored file ``name`` at ``target``: a hard link to ``previous`` (the last build's
    copy) when that holds the same bytes, else a checked copy from the cache."""
    if previous is not None:
        try:
            if (os.path.isfile(previous) and not os.path.islink(previous) and os.stat(previous).st_nlink == 1
                    and hashlib.sha256(previous.read_bytes()).hexdigest() == sha256):
                os.link(previous, target, follow_symlinks=False)
                return
        except OSError:
            pass
    data = (folder / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SiteAssetsUnavailable(package=DUCKDB_WASM.spec, cache=str(folder), command=f"rm -r {folder}",
                                    detail=f"the cached {name} is not the file unpacked there")
    target.write_bytes(data)
