"""Self-contained HTML pages for the review and scoring reports.

A page carries its style and its one script inline and a Content-Security-Policy that lets it load
nothing but its own images (files beside it), so it opens offline, from a file or a share, and
fetches nothing from the network. Tables with ``class="sortable"`` sort on a click on a column
header (numbers numerically, empty cells last; a second click reverses; the header's
``aria-sort`` says how the rows are sorted).
"""
from __future__ import annotations

import html
import math
from typing import Iterable, Mapping, Optional, Sequence

CSP = ("default-src 'none'; img-src 'self' file:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #1d1d1d; background: #fafafa; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #c8c8c8; padding: 2px 5px; text-align: right; }
th { background: #e9eef4; } td.text, th.text { text-align: left; }
table.sortable th { cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; } th[aria-sort="descending"]::after { content: " \\25BC"; }
figure { display: inline-block; margin: 0.6em 1em 0.6em 0; } figcaption { font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #444; }
.note { color: #555; font-size: 0.9em; }
"""

SORT_SCRIPT = """
(function () {
  function key(cell) { return cell.getAttribute('data-sort') !== null ? cell.getAttribute('data-sort') : cell.textContent; }
  function compare(x, y) {
    var nx = x === '' ? NaN : Number(x), ny = y === '' ? NaN : Number(y);
    if (!isNaN(nx) && !isNaN(ny)) { return nx - ny; }
    if (isNaN(nx) && isNaN(ny)) { return x.localeCompare(y); }
    return isNaN(nx) ? 1 : -1;
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, column) {
      th.addEventListener('click', function () {
        var ascending = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var c = compare(key(a.cells[column]), key(b.cells[column]));
          return ascending ? c : -c;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
"""


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def format_value(value: object, digits: int = 4) -> str:
    """Text of a table cell: floats to ``digits`` decimals, booleans yes/no, None empty."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def sort_key(value: object) -> str:
    """The ``data-sort`` value: the full number (booleans 1/0), the text otherwise, empty for None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


def table(columns: Sequence[str], rows: Iterable[Mapping[str, object]], sortable: bool = True,
          table_id: Optional[str] = None, headers: Optional[Sequence[str]] = None,
          digits: Optional[Mapping[str, int]] = None) -> str:
    """An HTML table of ``rows`` (dicts) with one column per key in ``columns``; ``digits`` sets the
    decimals of some columns (default 4). A header may break after each underscore, so wide tables fit."""
    rows = list(rows)
    headers = list(headers or columns)

    def is_text(column: str) -> bool:
        values = [r.get(column) for r in rows if r.get(column) is not None]
        return bool(values) and all(isinstance(v, str) for v in values)

    align = {c: ' class="text"' if is_text(c) else "" for c in columns}
    head = "".join(f"<th{align[c]}>{escape(h).replace('_', '_<wbr>')}</th>" for c, h in zip(columns, headers))
    places = {c: (digits or {}).get(c, 4) for c in columns}
    body = "\n".join("<tr>" + "".join(
        f'<td{align[c]} data-sort="{escape(sort_key(r.get(c)))}">{escape(format_value(r.get(c), places[c]))}</td>'
        for c in columns) + "</tr>" for r in rows)
    attributes = (' class="sortable"' if sortable else "") + (f' id="{escape(table_id)}"' if table_id else "")
    return f"<table{attributes}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def page(title: str, body: str) -> str:
    """A complete HTML document: inline style, the sort script, and the no-fetch security policy."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{escape(title)}</h1>\n"
            f"{body}\n<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n")
