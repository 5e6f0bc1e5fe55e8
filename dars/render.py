"""The one table renderer of every report: a `Table` (a corner, columns and labelled rows of cells)
as a Markdown grid, an HTML table, a plain-text grid or CSV lines, and `fmt`, the one number
format of a cell.

A cell is a records.Value (a mean over seeds or a paired gain, formatted by `fmt`), None (not
applicable) or anything a caller formatted itself (printed as str() gives it). Documents (the
supplementary tables, evidence, the per-method table) put their own titles and notes around the
grids; they share the grids, the number format and the HTML page (its cell CSS)."""
import math
from dataclasses import dataclass
from html import escape

import pandas as pd

from .records import Value

MINUS = "−"  # in a gain row's label: "a − b"
MISSING = "–"  # an empty cell: not applicable, or no seed has the value
PERCENT = {"miou", "iou", "tail", "share"}  # metrics shown in percent; the others (KL, nats) as they are
CSV_COLUMNS = ["row", "column", "metric", "mean", "std", "n", "seeds", "values", "wins"]
TAIL_MARK = "†"
# Cells right-aligned, row labels left-aligned: every HTML page's tables look alike.
CELL_CSS = ("td,th{border:1px solid #bbb;padding:3px 6px;white-space:nowrap;text-align:right}"
            "tr>th:first-child{text-align:left}")


@dataclass
class Table:
    title: str
    corner: str
    columns: list
    rows: list  # [(label, [records.Value | None | str per column])]
    notes: list


def fmt(v, decimals=1, missing=MISSING):
    """'68.3 ± 0.4' (percent, `decimals` decimals) or '0.0137 ± 0.0012' (KL, 4 decimals); gains
    signed, with [wins/n]; a step count as an integer; no ± where a cell has one seed."""
    if v is None or math.isnan(v.mean):
        return missing
    if v.metric == "steps":
        return f"{int(v.mean)}"
    scale, spec = (100, f".{decimals}f") if v.metric in PERCENT else (1, ".4f")
    spread = f" ± {scale * v.std:{spec}}" if v.n >= 2 else ""
    if v.gain:
        text = f"{scale * v.mean:+{spec}}"
        text = "+" + text[1:] if float(text) == 0 else text  # no "-0.0"
        return text + spread + (f" [{v.wins}/{v.n}]" if v.n >= 2 else "")
    return f"{scale * v.mean:{spec}}" + spread


def cell_text(c):
    """A cell as text: a Value (or None) in the one number format, anything else as str() says."""
    return fmt(c) if c is None or isinstance(c, Value) else str(c)


def markdown(table):
    """The Markdown grid of a table (no title, no notes)."""
    lines = ["| " + " | ".join([table.corner] + list(table.columns)) + " |",
             "|" + "|".join([":---"] + ["---:"] * len(table.columns)) + "|"]
    lines += ["| " + " | ".join([label.replace("|", "\\|")] + [cell_text(c) for c in cells]) + " |"
              for label, cells in table.rows]
    return "\n".join(lines) + "\n"


def html(table):
    """The HTML <table> of a table (no title, no notes)."""
    head = "".join(f"<th>{escape(c)}</th>" for c in [table.corner] + list(table.columns))
    body = "".join("<tr><th>" + escape(label) + "</th>" + "".join(f"<td>{escape(cell_text(c))}</td>" for c in cells)
                   + "</tr>" for label, cells in table.rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(body, style):
    """A standalone HTML page (what `snakemake --report` shows); `style`: the page's CSS, the
    shared CELL_CSS with its own table and text fonts."""
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{style}</style></head><body>{body}</body></html>\n"


def text(table):
    """A plain-text grid for a terminal: the label column left-aligned, the others right-aligned,
    two spaces apart, a dashed line under the header (no title, no notes)."""
    rows = [[str(label)] + [cell_text(c) for c in cells] for label, cells in table.rows]
    headers = [table.corner] + list(table.columns)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def frame(table):
    """CSV lines: one per Value cell, fractions at full precision (text cells are left out: they
    are labels, not measurements)."""
    plain = [c[:-len(TAIL_MARK)] if c.endswith(TAIL_MARK) else c for c in table.columns]
    out = []
    for label, cells in table.rows:
        for col, v in zip(plain, cells):
            if isinstance(v, Value):
                metric = v.metric + ("_gain" if v.gain else "")
                out.append({"row": label, "column": col, "metric": metric, "mean": v.mean, "std": v.std,
                            "n": v.n, "seeds": ";".join(map(str, v.seeds)),
                            "values": ";".join(f"{x!r}" for x in v.values),
                            "wins": v.wins if v.gain else None})
    return pd.DataFrame(out, columns=CSV_COLUMNS).astype({"n": "Int64", "wins": "Int64"})
