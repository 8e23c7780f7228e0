"""MkDocs, faster on the catalog's pages, with the same output.

Where a 1,000-model build went (benchmarks/site_build.py measures it): the generated
pages are mostly raw HTML blocks (tables of versions and events, SVG charts), and
Python's pure-Python HTML parser went through all of it three times per page:
MkDocs' anchor collector, Python-Markdown's raw-HTML block finder, and Material's
search indexer. None of the three changes a raw block: Markdown copies it to the
output verbatim, and the search indexer skips an element marked
``data-search-exclude`` (the event tables, most of the bytes).

This module is an engine-side accelerator; the generator knows nothing of it (the
pages stay plain Markdown that MkDocs, or Zensical, renders alone):

- :class:`RawBlocks`, a Markdown extension: a top-level raw HTML block of the plain
  shape the templates write (a block-level tag at the start of a line after a blank
  line, closed by its own end tag at the end of a line before a blank line, no
  comment, script, style or textarea inside) is put in Markdown's own HTML
  stash, exactly as Markdown's block finder would put it, before the parsers run;
  anything else is left to Markdown. The ids in the stashed blocks are added to the
  page's anchors afterwards (MkDocs' link checks still see them).
- :class:`Accelerator`, a MkDocs plugin: Material's search indexer is handed the
  page without the stashed blocks marked ``data-search-exclude`` (what it would have
  skipped), then the page gets its whole content back, with the same attribute
  clean-up the indexer applies.

``tests/test_site_build.py`` builds sites with and without it and requires every
page and the search index to be byte-identical.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import inspect
import itertools
import re
from typing import Any

import markdown
from markdown import util as md_util
from markdown.extensions import Extension
from markdown.postprocessors import RawHtmlPostprocessor
from markdown.preprocessors import NormalizeWhitespace, Preprocessor
from mkdocs.plugins import BasePlugin, CombinedEvent, event_priority

_START = re.compile(r"<([A-Za-z][A-Za-z0-9]*)(?=[\s/>])")
# What makes a block one to leave to Markdown (in a text in lower case): comments, processing
# instructions, CDATA, raw-text elements, Markdown inside HTML.
_UNSAFE = ("<!--", "<?", "<![", "<script", "<style", "<textarea", "markdown=")
_ID = re.compile(r"""\sid=["']([^"']+)["']""")
_EXCLUDED = re.compile(r"^<[A-Za-z][A-Za-z0-9]*\b[^>]*\sdata-search-exclude[\s>=/]")
_HEADING_ID = re.compile(r"<h[1-6]\b[^>]*\sid=")   # (in a text in lower case)
# What Material's search plugin removes from a page after indexing it (its on_page_context).
_SEARCH_ATTRIBUTES = re.compile(r"\s?data-search-\w+=\"[^\"]+\"")
_SEARCH_ATTRIBUTE = re.compile(r"data-search-\w+=\"[^\"]+\"")   # (in every match of the one above)


class _Stash(Preprocessor):
    """Stash plain top-level raw HTML blocks before the HTML parsers see them."""

    def __init__(self, md: markdown.Markdown, state: dict[str, Any]) -> None:
        super().__init__(md)
        self.state = state

    def run(self, lines: list[str]) -> list[str]:
        ids: set[str] = set()
        excluded: list[str] = []
        out: list[str] = []
        n = len(lines)
        i = 0
        after_blank = True
        while i < n:
            line = lines[i]
            found = self._block(lines, i) if after_blank and line.startswith("<") else None
            if found is None:
                out.append(line)
                after_blank = not line.strip()
                i += 1
                continue
            end, text, lower = found
            block = text + "\n"  # with its line's end, as Markdown stashes it
            ids.update(_ID.findall(block))
            if _EXCLUDED.match(block) and not _HEADING_ID.search(lower):   # (a heading with an id is a section even there)
                excluded.append(text)  # (the page's last block ends the output: no newline)
            out.append(self.md.htmlStash.store(block))
            after_blank = False
            i = end + 1
        self.state["ids"] = ids
        self.state["excluded"] = excluded
        return out

    def _block(self, lines: list[str], start: int) -> tuple[int, str, str] | None:
        """The raw block that starts at ``start`` (its last line, its text, and that text in lower
        case), or None to leave it to Markdown.

        The block runs to the line before the next blank one; it is taken only when its
        first tag's nesting depth, counted line by line, first comes back to zero on that
        last line, which ends with the closing tag, and no line holds anything unsafe.
        Tags and unsafe parts are looked for in the block in lower case, as the HTML parser
        compares tag names (substring searches and a case-sensitive pattern: case-blind patterns
        went over every byte of a page's blocks); a block with a character that is two in lower
        case ("İ") is left to Markdown, as positions would not hold."""
        match = _START.match(lines[start])
        if match is None or not self.md.is_block_level(match.group(1).lower()):
            return None
        tag = match.group(1).lower()
        end, n = start, len(lines)
        while end + 1 < n and lines[end + 1].strip():
            end += 1
        block = lines[start:end + 1]
        text = "\n".join(block)
        lower = text.lower()
        if len(lower) != len(text) or any(unsafe in lower for unsafe in _UNSAFE):
            return None
        # (one pass over the whole block for the tag's openings and closings; a line's depth is
        # the count up to its end, as Markdown's block finder would see it)
        bounds = list(itertools.accumulate(len(line) + 1 for line in block))
        depth, line = 0, 0
        for found in _tag_pattern(tag).finditer(lower):
            at = bisect.bisect_right(bounds, found.start())
            if at != line:
                if depth <= 0:
                    return None   # (back to zero before its last line: Markdown's block ends there)
                line = at
            depth += -1 if found.group(1) else 1
        if depth != 0 or line != end - start:
            return None   # (never closed, or closed on a line before the last)
        last = block[-1].rstrip()
        return (end, text, lower) if _closing(tag).search(last[-(len(tag) + 4):]) is not None else None


@functools.lru_cache(maxsize=64)
def _tag_pattern(tag: str) -> re.Pattern[str]:
    """An opening (``<tag``) or, group 1, a closing (``</tag>``) of ``tag`` (a lower-case name), in
    a text in lower case."""
    return re.compile(rf"<{tag}(?=[\s/>])|(</{tag}\s*>)")


@functools.lru_cache(maxsize=64)
def _closing(tag: str) -> re.Pattern[str]:
    return re.compile(rf"</{tag}\s*>", re.I)


def _without(content: str, blocks: list[str]) -> str:
    """``content`` without ``blocks``, each taken out where it next occurs after the one before
    (they come in page order): one pass over the page, however many blocks (a target page at
    10,000 models has ~10,000; one search of the whole page per block took minutes)."""
    pieces: list[str] = []
    at = 0
    for block in blocks:
        found = content.find(block, at)
        if found < 0:
            continue   # (not in the output as written: nothing to take out)
        pieces.append(content[at:found])
        at = found + len(block)
    pieces.append(content[at:])
    return "".join(pieces)


class RawBlocks(Extension):
    """The Markdown side: stash plain raw HTML blocks (priority 22: after fenced code, before
    MkDocs' anchor collector at 21 and Markdown's block finder at 20)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state: dict[str, Any] = {"ids": set(), "excluded": []}

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 - Markdown's API
        md.preprocessors.register(_Stash(md, self.state), "catalog_raw_blocks", 22)
        if "normalize_whitespace" in md.preprocessors and _same_source(NormalizeWhitespace.run, _WHITESPACE_RUN):
            md.preprocessors.register(_Whitespace(md), "normalize_whitespace", 30)   # (in its place)
        if "raw_html" in md.postprocessors and _same_source(RawHtmlPostprocessor.run, _RAW_HTML_RUN):
            md.postprocessors.register(_RawHtml(md), "raw_html", 30)


class _Whitespace(NormalizeWhitespace):
    """Markdown's own whitespace clean-up, without its search for lines of spaces when the page has
    no space before a line's end (each of its matches ends with one): Python's regex engine tried
    that look-behind pattern at every byte of a page. Used only where Markdown's ``run`` is the
    one this copies (:data:`_WHITESPACE_RUN`)."""

    def run(self, lines: list[str]) -> list[str]:
        source = "\n".join(lines)
        source = source.replace(md_util.STX, "").replace(md_util.ETX, "")
        source = source.replace("\r\n", "\n").replace("\r", "\n") + "\n\n"
        source = source.expandtabs(self.md.tab_length)
        if " \n" in source:
            source = re.sub(r"(?<=\n) +\n", "\n", source)
        return source.split("\n")


# The sha256 of NormalizeWhitespace.run's source as of Python-Markdown 3.11, whose steps
# _Whitespace.run repeats (another version's, if it differs, is left in place).
_WHITESPACE_RUN = "feae374d839e4140da44d0d648d2e0077ba4ba2a6a8b5a043bb4e9e47b6231d1"


class _RawHtml(RawHtmlPostprocessor):
    """Markdown's own restoring of the stashed HTML, without a search of each block for stashed
    HTML nested in it when the block holds no placeholder (each starts with ``STX``): that search
    went over every byte of the blocks again. Used only where Markdown's ``run`` is the one this
    copies (:data:`_RAW_HTML_RUN`)."""

    def run(self, text: str) -> str:
        def substitute_match(m: re.Match[str]) -> str:
            if key := m.group(1):
                wrapped = True
            else:
                key = m.group(2)
                wrapped = False
            if (key := int(key)) >= self.md.htmlStash.html_counter:
                return m.group(0)
            html = self.stash_to_string(self.md.htmlStash.rawHtmlBlocks[key])
            if not wrapped or self.isblocklevel(html):
                return pattern.sub(substitute_match, html) if md_util.STX in html else html
            html = f"<p>{html}</p>"
            return pattern.sub(substitute_match, html) if md_util.STX in html else html

        if self.md.htmlStash.html_counter:
            base_placeholder = md_util.HTML_PLACEHOLDER % r"([0-9]+)"
            pattern = re.compile(f"<p>{ base_placeholder }</p>|{ base_placeholder }")
            return pattern.sub(substitute_match, text)
        else:
            return text


# The same for RawHtmlPostprocessor.run, whose steps _RawHtml.run repeats.
_RAW_HTML_RUN = "7f0efc33921a7c07c69d25ad6c3dbd24998bae8822b572731f520652d1974f87"


@functools.lru_cache(maxsize=None)
def _same_source(function: Any, sha256: str) -> bool:
    """Whether ``function``'s source is the one with ``sha256`` (a copy of it here is then the same steps)."""
    try:
        return hashlib.sha256(inspect.getsource(function).strip().encode()).hexdigest() == sha256
    except (OSError, TypeError):
        return False


class Accelerator(BasePlugin):
    """The MkDocs side: anchors of stashed blocks, and a lighter page for the search indexer."""

    def __init__(self, extension: RawBlocks) -> None:
        super().__init__()
        self.extension = extension
        self.excluded: dict[str, list[str]] = {}
        self.full: dict[str, str] = {}

    def on_page_content(self, html: str, *, page: Any, config: Any, files: Any) -> str:
        state = self.extension.state
        if page.present_anchor_ids is not None:
            page.present_anchor_ids = set(page.present_anchor_ids) | state["ids"]
        self.excluded[page.file.src_uri] = list(state["excluded"])
        state["ids"], state["excluded"] = set(), []
        return html

    @event_priority(100)  # before the search plugin indexes the page
    def _lighter(self, context: Any, *, page: Any, config: Any, nav: Any) -> Any:
        blocks = self.excluded.pop(page.file.src_uri, [])
        if blocks and page.content:
            self.full[page.file.src_uri] = page.content
            page.content = _without(page.content, blocks)
        return context

    @event_priority(-100)  # after it: the whole page again, cleaned as the indexer cleans it
    def _whole(self, context: Any, *, page: Any, config: Any, nav: Any) -> Any:
        full = self.full.pop(page.file.src_uri, None)
        if full is not None:
            # (the pattern, which starts with an optional space, is tried at every byte: a search for
            # its literal part first finds whether there is anything to remove at all)
            page.content = _SEARCH_ATTRIBUTES.sub("", full) if _SEARCH_ATTRIBUTE.search(full) else full
        return context

    on_page_context = CombinedEvent(_lighter, _whole)
