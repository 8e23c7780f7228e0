"""Jinja2 rendering of the catalog pages, from the data document alone.

Templates live in ``site_src/`` (shipped as ``catalog/site/defaults``, see layers.py) (``*.md.j2``; partials start with ``_``). A site
owner can point the generator at an overrides folder whose templates win over
the defaults and can still extend them: ``{% extends "default:model.md.j2" %}``.

Escaping: autoescape is on and every value printed with ``{{ }}`` first goes
through :func:`catalog.site.svg.esc`, which writes HTML *and* Markdown syntax
characters as numeric character references. The pages pass through the Markdown
processor after Jinja, so HTML escaping alone would leave ``[x](javascript:...)``
live; numeric references are inert in both HTML blocks and Markdown text.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, Macro
from jinja2.utils import internalcode, missing
from markupsafe import Markup

from ..errors import SiteBuildFailed
from . import svg
from .context import is_web_url
from .incremental import shows
from .layers import DEFAULTS, NOT_ASSETS
from .svg import esc

DEFAULT_TEMPLATES = DEFAULTS


def page_root(path: str) -> str:
    """The relative URL from a page (by its Markdown path) back to the site root."""
    p = PurePosixPath(path)
    depth = len(p.parts) - 1 if p.name == "index.md" else len(p.parts)
    return "../" * depth or "./"


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, printing ``{{ value }}`` as ``esc(value)`` where it would write
    ``escape(esc(value))``: esc (the finalize) already returns Markup, which escape() only copies,
    twice over, for every value printed. Should Jinja stop calling this hook, templates compile as
    before: the same output, only slower."""

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if self.environment.finalize is esc and finalize.src is not None:
            self.write(finalize.src)
        else:
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if self.environment.finalize is esc and finalize.src is not None:
            self.write(")")
        else:
            super()._output_child_post(node, frame, finalize)


# What a plain dict has as attributes: ``x.name`` on a dict finds one of these, or else its item.
_DICT_ATTRIBUTES = frozenset(dir(dict))


# Callables that never take the context: a macro, a builtin such as a dict's get.
_CONTEXT_FREE: frozenset[type] = frozenset({Macro, types.BuiltinMethodType, types.BuiltinFunctionType})


class _Context(Context):
    """Jinja's context, calling a macro or a builtin method straight away, and the page address
    functions with the context: :meth:`Context.call` first looks for a ``pass_context`` mark on the
    callable, and that look costs more than many a call (an event row makes four macro calls, a few
    ``.get`` and up to three address look-ups)."""

    @internalcode
    def call(__self, __obj: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if __obj.__class__ not in _CONTEXT_FREE:
            if ((__obj is _model_url or __obj is _version_url or __obj is _target_url)
                    and not kwargs.get("_loop_vars") and not kwargs.get("_block_vars")):
                # (our own pass_context functions; with loop or block variables, Jinja derives a context)
                kwargs.pop("_block_vars", None)
                kwargs.pop("_loop_vars", None)
                return __obj(__self, *args, **kwargs)
            return super().call(__obj, *args, **kwargs)
        kwargs.pop("_block_vars", None)
        kwargs.pop("_loop_vars", None)
        try:
            return __obj(*args, **kwargs)
        except StopIteration:
            return __self.environment.undefined("value was undefined because a callable raised a StopIteration exception")


# The two shortcuts into Jinja's internals (the code generator's print hooks, Context.call) are
# taken on the Jinja line they were written and tested against only; with any other, Jinja's own
# classes render the same pages, only slower.
_JINJA_KNOWN = jinja2.__version__.startswith("3.1.")


class _Environment(jinja2.Environment):
    code_generator_class = _CodeGenerator if _JINJA_KNOWN else CodeGenerator
    context_class = _Context if _JINJA_KNOWN else Context

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute``, as Jinja does it (the attribute, else the item), with the answer for a
        plain dict found first: its attribute look-up can only fail (raising, the costly part of a
        page of the data document's dicts) unless ``attribute`` is one of dict's own."""
        if obj.__class__ is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def _join(values: Iterable[Any], sep: str = ", ") -> Markup:
    return Markup(esc(sep)).join(esc(v) for v in values)


def _link(url: str | None, text: Any = None, css: str = "") -> Markup:
    """An external link when ``url`` is http(s); otherwise the address as inert text."""
    if url is None:
        return Markup("")
    label = esc(url if text is None else text)
    if is_web_url(url):
        klass = f' class="{esc(css)}"' if css else ""
        return Markup(f'<a href="{esc(url)}"{klass} rel="nofollow noopener">{label}</a>')
    return Markup(f'<code class="inert-url" title="not an http(s) link">{label}</code>')


def _when(value: str | None) -> str:
    if not value:
        return ""
    return value.replace("T", " ")[:16] + " UTC" if "T" in value else value


def _yaml_str(value: Any) -> Markup:
    # A JSON string with every non-ASCII and markup character escaped is valid YAML.
    text = json.dumps(str(value), ensure_ascii=True)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return ""
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


@jinja2.pass_environment
def _count_true(environment: jinja2.Environment, values: Iterable[Any], attribute: str) -> int:
    """How many of ``values`` have a true ``attribute`` (``selectattr(attribute) | list | length``,
    without the filter machinery that costs more than the rest of an event row)."""
    return sum(1 for v in values if environment.getattr(v, attribute))


def _truncate(value: Any, limit: int = 160) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _own_model(context: Context) -> Any:
    """The page's model, if it is a model's page (``context.get`` without its KeyError on other pages)."""
    own = context.resolve_or_missing("model")
    return None if own is missing else own


@jinja2.pass_context
def _model_url(context: Any, name: str, anchor: str = "") -> str | None:
    """The relative address of the page of model ``name`` from the page being rendered
    (``None`` when it has none: a model deleted or renamed since, a forged name)."""
    own = _own_model(context)
    if own is not None and own["name"] == name:   # the page's own model: no need to read (and depend on) the map
        url = own["url"]
    else:
        url = context["doc"].get("model_urls", {}).get(name)
    return None if url is None else f"{context['root']}{url}{anchor}"


@jinja2.pass_context
def _version_url(context: Any, name: str, version: int | None) -> str | None:
    """The address of version ``version`` on the page of model ``name``, or ``None`` when
    that page does not show it (deleted since) or there is no page."""
    if version is None:
        return None
    own = _own_model(context)
    if own is not None and own["name"] == name:   # (as in _model_url: a model page depends on its own versions only)
        if version not in [v["version"] for v in own["versions"]]:
            return None
    elif not shows(context["doc"], name, version):   # (the page depends on that one version being shown)
        return None
    return _model_url(context, name, f"#v{version}")


@jinja2.pass_context
def _target_url(context: Any, name: str) -> str | None:
    """The relative address of the page of target ``name``, or ``None``."""
    url = context["doc"].get("target_urls", {}).get(name)
    return None if url is None else f"{context['root']}{url}"


_ENTRY = "catalog-"
KEEP_DAYS = 7


class TemplateCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between builds: Jinja's bytecode cache in its default folder
    (``/tmp/_jinja2-cache-<uid>``, which Jinja makes with mode 0700 and refuses unless it is the
    user's own). Compiling the ~60 templates of the site and the theme took ~0.4 s of every build.

    An entry's key is the template's name and file and ``salt`` (what compiles it: the engine
    key, and the source of the code generator of :class:`_Environment`); Jinja checks an entry
    against the template source's checksum and its own and Python's versions before using it.
    An entry that cannot be read or written is compiled afresh: a cache is never a reason to fail.

    Entries are named ``catalog-<salt>-<key>.cache`` (other programs' Jinja entries share the
    folder): those of another salt not written for :data:`KEEP_DAYS` days are removed (another
    install of the catalog, still in use, compiles them again).
    """

    def __init__(self, salt: str, directory: str | None = None) -> None:
        super().__init__(directory, pattern=f"{_ENTRY}{salt[:16]}-%s.cache")
        self.salt = salt

    def prune(self) -> int:
        """Remove the entries of other salts older than :data:`KEEP_DAYS` days; returns how many."""
        own = f"{_ENTRY}{self.salt[:16]}-"
        cutoff = time.time() - KEEP_DAYS * 86400
        removed = 0
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        for name in names:
            if not name.startswith(_ENTRY) or name.startswith(own) or not name.endswith(".cache"):
                continue
            path = os.path.join(self.directory, name)
            try:
                found = os.lstat(path)
                if stat.S_ISREG(found.st_mode) and found.st_mtime < cutoff:
                    os.unlink(path)
                    removed += 1
            except OSError:
                continue
        return removed

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return hashlib.sha256(f"{self.salt}\0{name}\0{filename or ''}".encode()).hexdigest()

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - a damaged entry (marshal's EOFError, ValueError, TypeError...)
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def template_cache(salt: str) -> TemplateCache | None:
    """A :class:`TemplateCache`, or None when its folder cannot be had (none is used then);
    ``CATALOG_TEMPLATE_CACHE=0`` turns it off."""
    if os.environ.get("CATALOG_TEMPLATE_CACHE", "").strip() == "0":
        return None
    try:
        cache = TemplateCache(hashlib.sha256(salt.encode() + Path(__file__).read_bytes()).hexdigest())
    except (OSError, RuntimeError):   # (no temporary folder, or one that is not the user's own)
        return None
    cache.prune()
    return cache


class Renderer:
    """Renders pages from the data document; ``overrides`` (a folder) wins over the defaults."""

    def __init__(self, overrides: str | os.PathLike[str] | None = None, defaults: str | Path = DEFAULT_TEMPLATES) -> None:
        self.defaults = Path(defaults)
        self.overrides = Path(overrides) if overrides else None
        if self.overrides is not None and not self.overrides.is_dir():
            raise SiteBuildFailed(f"the templates folder {self.overrides} does not exist: give a folder of *.md.j2 templates")
        search = [str(self.overrides)] if self.overrides else []
        search.append(str(self.defaults))
        loader = jinja2.ChoiceLoader([
            jinja2.PrefixLoader({"default": jinja2.FileSystemLoader(str(self.defaults))}, delimiter=":"),
            jinja2.FileSystemLoader(search),
        ])
        self.env = _Environment(
            loader=loader,
            autoescape=True,
            finalize=esc,   # (every value printed; see _CodeGenerator)
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,   # (templates do not change during a build: no stat of the file per include)
        )
        self.env.filters.update(
            e=esc, escape=esc, join=_join, link=_link, when=_when, yaml_str=_yaml_str,
            number=_number, size=_size, truncate_text=_truncate, count_true=_count_true,
        )
        self.env.globals.update(trend_chart=svg.trend_chart, lineage_diagram=svg.lineage_diagram, is_web_url=is_web_url,
                                model_url=_model_url, version_url=_version_url, target_url=_target_url,
                                has_macro=self.has_macro)
        self._macros: dict[str, frozenset[str]] = {}

    def has_macro(self, template: str, macro: str) -> bool:
        """Whether ``template`` (an override if there is one) defines ``macro`` at its top level: the
        event table imports its cells' macros once and includes, row by row, an override that has none."""
        if template not in self._macros:
            source, _, _ = self.env.loader.get_source(self.env, template)   # type: ignore[union-attr]
            body = self.env.parse(source).body
            self._macros[template] = frozenset(node.name for node in body if isinstance(node, nodes.Macro))
        return macro in self._macros[template]

    def render(self, template: str, path: str, document: Mapping[str, Any], **extra: Any) -> str:
        """Render one page; ``path`` is its Markdown path in the build folder."""
        return self.env.get_template(template).render(doc=document, root=page_root(path), path=path, **extra)

    def static_files(self) -> dict[str, Path]:
        """Assets to copy (relative path → file): everything not a template; overrides win."""
        found: dict[str, Path] = {}
        for folder in [self.defaults] + ([self.overrides] if self.overrides else []):
            if not folder.is_dir():
                continue
            for file in sorted(folder.rglob("*")):
                top = file.relative_to(folder).parts[0]
                if (file.is_file() and not file.name.endswith(".j2") and not file.name.startswith(".")
                        and not (folder == self.defaults and top in NOT_ASSETS)):
                    found[file.relative_to(folder).as_posix()] = file
        return found


def pages(document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every page the site has: (template, Markdown path, extra context)."""
    out: list[tuple[str, str, dict[str, Any]]] = [
        ("home.md.j2", "index.md", {}),
        ("models.md.j2", "models/index.md", {}),
        ("owners.md.j2", "owners.md", {}),
        ("targets.md.j2", "targets/index.md", {}),
        ("tags.md.j2", "tags.md", {}),
        ("audit.md.j2", "audit.md", {}),
        ("sql.md.j2", "sql.md", {}),
    ]
    out.extend(("model.md.j2", f"models/{m['segment']}/index.md", {"model": m}) for m in document["models"]
               if m.get("segment"))
    out.extend(("target.md.j2", f"targets/{t['segment']}/index.md", {"target": t}) for t in document["targets"]
               if t.get("segment"))
    out.extend(("audit_month.md.j2", m["path"], {"month": m}) for m in document.get("audit_pages", ()))
    return out


def render_pages(renderer: Renderer, document: Mapping[str, Any], extra: Mapping[str, Any] | None = None,
                 only: Sequence[str] | None = None) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Render every page; a page that fails is reported under its model, not fatal."""
    rendered: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for template, path, context in pages(document):
        if only is not None and path not in only:
            continue
        try:
            rendered[path] = renderer.render(template, path, document, **dict(extra or {}), **context)
        except jinja2.TemplateError as exc:
            subject = context.get("model") or context.get("target")
            key = (subject.get("name") or subject.get("target")) if subject else path
            problems.setdefault(key, []).append(f"page {path} failed to render: {type(exc).__name__}: {exc}")
            if subject:
                rendered[path] = _fallback(key)
            else:
                raise
    return rendered, problems


def _fallback(name: str) -> str:
    return f'---\ntitle: {_yaml_str(name)}\n---\n\n# {esc(name)}\n\nThis page could not be rendered; see the build report.\n'
