"""The catalog site generator: lake → data document → Markdown pages → MkDocs.

>>> from catalog import Registry
>>> from catalog.site import build_site
>>> report = build_site(Registry("data/lake"), "site")      # doctest: +SKIP
"""

from .build import BuildReport, SiteBuildFailed, build_site, make_server, read_records, run_server, serve
from .context import SiteRecords, api_model, api_models, make_document
from .output import check_folder
from .render import Renderer

__all__ = [
    "BuildReport", "Renderer", "SiteBuildFailed", "SiteRecords", "api_model", "api_models",
    "build_site", "check_folder", "make_document", "make_server", "read_records", "run_server", "serve",
]
