"""Small HTML building blocks: escaping, tables, embedded PNGs, the page skeleton with its CSS and image check.

Every piece of text goes through :func:`html.escape` unless it is wrapped in :class:`Html` (already-built markup).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any


class Html(str):
    """A string of markup that is inserted as it is (everything else is escaped)."""


def esc(value: Any) -> Html:
    """Escaped text, or ``value`` unchanged when it is already :class:`Html`.

    Examples
    --------
    >>> esc("<b>&"), esc(Html("<b>"))
    ('&lt;b&gt;&amp;', '<b>')
    """
    return value if isinstance(value, Html) else Html(html.escape(str(value)))


def fmt_number(value: Any, digits: int = 4) -> str:
    """Numbers for tables: integers as they are, floats with ``digits`` decimals (4 significant digits from a
    million on), ``n/a`` for NaN/None.

    Examples
    --------
    >>> fmt_number(0.912345), fmt_number(3), fmt_number(None), fmt_number(float("nan")), fmt_number(3725.44, 1)
    ('0.9123', '3', 'n/a', 'n/a', '3725.4')
    >>> fmt_number(12345678.9)
    '1.235e+07'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def fmt_values(values: Iterable[Any], digits: int = 4) -> str:
    """``"1 x 0.7 x 0.7"`` style text for a tuple of numbers (trailing zeros dropped).

    Examples
    --------
    >>> fmt_values([40, 56, 40]), fmt_values([1.0, 0.703125, 0.7])
    ('40 x 56 x 40', '1 x 0.7031 x 0.7')
    """
    return " x ".join(f"{round(float(v), digits):g}" for v in values)


def tag(name: str, content: Any = "", **attributes: Any) -> Html:
    """``<name attr="...">content</name>`` with attributes and content escaped (``class_`` gives ``class``)."""
    attrs = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{html.escape(str(value), quote=True)}"'
        for key, value in attributes.items()
        if value is not None
    )
    return Html(f"<{name}{attrs}>{esc(content)}</{name}>")


def join(parts: Iterable[Any]) -> Html:
    """Concatenate pieces, escaping those that are not markup."""
    return Html("".join(esc(p) for p in parts))


def table(
    header: Sequence[Any] | None, rows: Iterable[Sequence[Any]], numeric_from: int = 1, class_: str | None = None
) -> Html:
    """A table; cells from column ``numeric_from`` on are right-aligned, numbers are formatted. No header row when
    ``header`` is None."""
    body = []
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            text = value if isinstance(value, Html) else fmt_number(value)
            cells.append(tag("td", text, class_="num" if index >= numeric_from else None))
        body.append(tag("tr", join(cells)))
    head = "" if header is None else tag("thead", tag("tr", join(tag("th", h) for h in header)))
    return tag("table", join([head, tag("tbody", join(body))]), class_=class_)


def key_value_table(rows: Iterable[tuple[Any, Any]]) -> Html:
    """A two-column table of names and values."""
    return table(None, rows, numeric_from=99, class_="kv")


def png_image(png: bytes, alt: str) -> Html:
    """An ``<img>`` holding the PNG as a base64 data URI: the page stays one self-contained file."""
    encoded = base64.b64encode(png).decode("ascii")
    return Html(f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt, quote=True)}">')


def figure(png: bytes, caption: str) -> Html:
    return tag("figure", join([png_image(png, caption), tag("figcaption", caption)]))


def not_available(text: str = "not available yet") -> Html:
    return tag("p", text, class_="missing")


def paragraph(text: Any) -> Html:
    return tag("p", text)


def bullet_list(items: Iterable[Any]) -> Html:
    return tag("ul", join(tag("li", item) for item in items))


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 0 1.5rem 3rem; color: #1d2430; line-height: 1.45; }
h1 { border-bottom: 2px solid #3b6ea5; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #c9d3df; padding-bottom: .2rem; }
h3 { margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid #d5dce5; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #eef3f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv td:first-child { font-weight: 600; background: #f7f9fb; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #e1e6ec; }
figcaption { font-size: .88rem; color: #4a5565; }
p.missing { color: #8a5a00; background: #fff6e0; border-left: 4px solid #e0a800; padding: .4rem .7rem; }
p.problem { color: #8a1c1c; background: #fdecec; border-left: 4px solid #c62828; padding: .4rem .7rem; }
nav.toc { background: #f4f7fa; border: 1px solid #dde4ec; padding: .5rem 1.2rem; display: inline-block; }
code, pre { background: #f1f3f5; padding: .1rem .3rem; border-radius: 3px; }
pre { padding: .6rem; overflow-x: auto; }
details { margin: .6rem 0; }
.meta { color: #4a5565; font-size: .9rem; }
"""

#: Runs after the page has loaded: records how many images decoded, so a headless browser test can read it.
IMAGE_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var rendered = images.filter(function (im) { return im.complete && im.naturalWidth > 0; }).length;
  var root = document.documentElement;
  root.setAttribute("data-images-total", String(images.length));
  root.setAttribute("data-images-rendered", String(rendered));
  root.setAttribute("data-images-ok", rendered === images.length ? "true" : "false");
});
"""


def page(title: str, header: Html, sections: Sequence[tuple[str, str, Html]]) -> str:
    """The whole document: title, header, a table of contents and the sections ``(anchor, heading, body)``."""
    toc = tag("nav", join([tag("strong", "Contents"), tag("ol", join(
        tag("li", tag("a", heading, href=f"#{anchor}")) for anchor, heading, _ in sections
    ))]), class_="toc")
    body = join(
        tag("section", join([tag("h2", heading), content]), id=anchor) for anchor, heading, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{tag('h1', title)}\n{header}\n{toc}\n{body}\n"
        f"<script>{IMAGE_CHECK_SCRIPT}</script>\n</body>\n</html>\n"
    )
