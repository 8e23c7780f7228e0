"""Where the site's defaults live, and how a site owner's own files lay over them.

The default templates, assets and MkDocs configuration are edited in the
checkout's top-level ``site_src/`` and ship inside the package as
``catalog/site/defaults/`` (see pyproject.toml), so an installed catalog builds
its site from any folder. Run from a checkout (an editable install), the
package has no such folder and ``site_src/`` itself is used.

A site owner layers on top: a templates folder whose files win over the
defaults (and may still ``{% extends "default:model.md.j2" %}``), and an
``mkdocs.yml`` whose keys win over the default configuration, tables merged
(MkDocs' own ``INHERIT``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..errors import SiteBuildFailed

_HERE = Path(__file__).resolve().parent
DEFAULTS = _HERE / "defaults" if (_HERE / "defaults").is_dir() else _HERE.parents[1] / "site_src"
DEFAULT_MKDOCS = DEFAULTS / "mkdocs.yml"
# Files of the defaults folder that configure the build rather than being copied into the site.
NOT_ASSETS = {"mkdocs.yml", "__init__.py", "__pycache__"}


def layered_config(own: str | os.PathLike[str] | None) -> io.StringIO | str:
    """What MkDocs' ``load_config`` should read: the default configuration, or a site
    owner's ``own`` file laid over it. The owner's file keeps its name, so that paths
    in it (a theme's ``custom_dir``, extra CSS) stay relative to where it is; one that
    names its own ``INHERIT`` takes full control and is read as it is."""
    if own is None or Path(own).resolve() == DEFAULT_MKDOCS.resolve():
        return str(DEFAULT_MKDOCS)
    path = Path(own)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteBuildFailed(f"cannot read the MkDocs configuration {path}: {exc.strerror or exc}") from None
    if not any(line.startswith("INHERIT:") for line in text.splitlines()):
        text = f"INHERIT: {str(DEFAULT_MKDOCS)!r}\n{text}"
    stream = io.StringIO(text)
    stream.name = str(path.resolve())
    return stream
