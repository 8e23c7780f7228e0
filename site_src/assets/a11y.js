/* Names for the parts of Material's own markup that have none (axe-core: aria-dialog-name,
   landmark-unique). The theme's templates stay untouched, so a site owner's mkdocs.yml and
   theme overrides keep working; the browser test checks the result with axe-core. */
(function () {
  function name() {
    var search = document.querySelector(".md-search[role='dialog']");
    if (search && !search.hasAttribute("aria-label")) search.setAttribute("aria-label", "Search the catalog");
    document.querySelectorAll("nav.md-code__nav:not([aria-label])").forEach(function (nav, i) {
      var block = nav.closest("pre, .highlight, div");
      var heading = null;
      for (var el = block; el && !heading; el = el.previousElementSibling) {
        if (/^H[1-6]$/.test(el.tagName)) heading = el;
      }
      var title = heading ? heading.textContent.replace(/\s*¶\s*$/, "").trim() : "code block " + (i + 1);
      nav.setAttribute("aria-label", "Copy: " + title + " (" + (i + 1) + ")");
    });
  }
  new MutationObserver(name).observe(document.documentElement, { childList: true, subtree: true });
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", name); } else { name(); }
})();
