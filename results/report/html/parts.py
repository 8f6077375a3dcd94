"""The HTML report's building blocks: its one stylesheet, data attributes and tables.

Kept apart from what the report shows, so each section of the page is built from the
same few pieces and the page stays one self-contained file with inline CSS.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["CSS", "attrs", "key_cells", "table"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px auto;
max-width:1400px;padding:0 16px;color:#1f2328;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
h3{margin-top:1.2em}
.sub{color:#59636e;margin-top:0}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;vertical-align:top;white-space:nowrap}
td.wrap{white-space:normal;min-width:24em}
tr.group td{border-top:2px solid #8c959f}td.rep{color:transparent}
.note{color:#59636e;font-size:12px;display:block}td.win{font-weight:700}
th{background:#f6f8fa;text-align:left}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.best{font-weight:700;background:#e6f4ea}
td.best::before{content:"\\2605 ";color:#1a7f37}
td.failed,.st-failed,.st-partly_failed{color:#b42318;font-weight:600}
td.not_applicable,.st-not_applicable{color:#6e7781;font-style:italic}
td.missing{color:#8c959f;text-align:center}
.unstable{color:#9a6700}
tr.differs td{background:#fff8c5}tr.differs.key td{background:#ffebe9;font-weight:600}
.warning{border:1px solid #d4a72c;background:#fff8c5;padding:8px 12px;border-radius:6px;margin:.8em 0}
.warning.key{border-color:#cf222e;background:#ffebe9}
.warning ul{margin:.3em 0}
.scroll{overflow-x:auto}
figure{margin:1em 0 1.6em 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#59636e;font-size:13px;max-width:1100px}
.notes{font-size:13px;color:#31363b}.notes p{margin:.2em 0}
.improved{color:#1a7f37;font-weight:600}.regressed{color:#b42318;font-weight:600}
.inconclusive{color:#9a6700;font-weight:600}
details summary{cursor:pointer;font-weight:600;margin:.6em 0}
table.sweep th{white-space:pre-line}
"""


def attrs(**values: object) -> str:
    """``data-*`` attributes, escaped: what tests and scrapers read instead of the prose."""
    return "".join(f' data-{k.replace("_", "-")}="{escape(str(v))}"' for k, v in values.items())


def table(header: Sequence[str], rows: Sequence[str], cls: str = "") -> str:
    """A scrolling table: escaped header cells, rows as given (already HTML)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if header else ""
    return f'<div class="scroll"><table class="{cls}">{thead}<tbody>{"".join(rows)}</tbody></table></div>'


def key_cells(keys: Sequence[str], previous: Sequence[str] | None, grey: int = 2) -> tuple[str, bool]:
    """Key cells with the first ``grey`` keys hidden while they repeat; True when a new group starts."""
    new_group = previous is None or keys[0] != previous[0]
    cells = []
    same = not new_group
    for i, value in enumerate(keys):
        same = same and previous is not None and i < grey and value == previous[i]
        cells.append(f'<td class="rep">{escape(value)}</td>' if same else f"<td>{escape(value)}</td>")
    return "".join(cells), new_group
