/* Click a column heading of a table with class "sortable" to sort by it. No dependencies.
   Each heading becomes a button, so the keyboard and screen readers can sort too. */
(function () {
  function key(cell) {
    var text = (cell && cell.textContent || "").trim();
    var m = text.match(/^v?(-?\d+(?:\.\d+)?)/);
    return m && /^v?-?\d/.test(text) && !/^\d{4}-\d{2}-\d{2}/.test(text) ? parseFloat(m[1]) : text.toLowerCase();
  }
  function sort(table, index, th) {
    var body = table.tBodies[0];
    if (!body) return;
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function init() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      if (!table.tHead || table.dataset.sortable === "on") return;
      table.dataset.sortable = "on";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
        var button = document.createElement("button");
        button.type = "button";
        button.title = "Sort by " + th.textContent.trim();
        while (th.firstChild) button.appendChild(th.firstChild);
        th.appendChild(button);
        th.addEventListener("click", function () { sort(table, i, th); });   // the button's clicks too
      });
    });
  }
  if (window.document$ && window.document$.subscribe) { window.document$.subscribe(init); }
  else if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
})();
