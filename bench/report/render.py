"""Render a report, given as a list of blocks, to one self-contained HTML page and to Markdown.

The page embeds its figures as base64 PNG and carries its own CSS: it opens offline, from disk,
with nothing fetched. Figures are also written next to it as PNG and SVG.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

PNG_DPI = 110

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1400px;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0 1rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.5rem; text-align: right; vertical-align: top; }
th { background: #f2f2f2; } td.text { text-align: left; max-width: 40rem; overflow-wrap: anywhere; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; max-width: 60rem; }
.missing { background: #fff6e0; border-left: 4px solid #e0a000; padding: 0.5rem 0.8rem; }
.note { color: #555; font-size: 0.9rem; }
h1 { margin: 0.2rem 0 0.6rem; }
.answer { border: 2px solid #2a7a4b; background: #f3faf5; padding: 0.3rem 1rem 0.5rem; border-radius: 6px; }
.answer h2 { margin-top: 0.4rem; border: none; } .answer ul { margin: 0.2rem 0; padding-left: 1.2rem; }
.answer li { margin: 0.1rem 0; } .answer li.warning { color: #8a4b00; }
"""


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str
    note: bool = False  # smaller, muted: methods and caveats


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Picture:
    stem: str  # figure files are <stem>.png and <stem>.svg
    png: bytes
    caption: str


@dataclass(frozen=True)
class Missing:
    """Something the data could not show, and why: said out loud instead of left out."""

    text: str


@dataclass(frozen=True)
class Callout:
    """The answer: a titled box of headed items, each with its detail lines, and a closing note."""

    title: str
    items: tuple[tuple[str, tuple[str, ...]], ...]
    note: str = ""


Block = Heading | Paragraph | Bullets | Table | Picture | Missing | Callout


def fmt(value: object) -> str:
    """A table cell: 4 significant digits, thousands separators for large numbers, '-' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isinf(v):
            return "inf"
        if v != 0 and abs(v) >= 10_000:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return str(value)


def save_figure(fig: Figure, out: Path, stem: str) -> bytes:
    """Write `stem`.png and `stem`.svg into `out`; returns the PNG bytes for embedding."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI)
    png = buf.getvalue()
    (out / f"{stem}.png").write_bytes(png)
    # the layout was solved for the PNG; solving it again for the SVG would double the cost of saving
    fig.set_layout_engine("none")
    fig.savefig(out / f"{stem}.svg", format="svg")
    return png


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    text_cols = {c for c in frame.columns if frame[c].dtype == object}
    rows = []
    for rec in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="text">{html.escape(fmt(v))}</td>' if c in text_cols else f"<td>{html.escape(fmt(v))}</td>"
            for c, v in zip(frame.columns, rec)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _md_cell(value: object) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of `frame` (cells formatted with `fmt`)."""
    head = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_md_cell(v) for v in rec) + " |" for rec in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def render_html(title: str, blocks: list[Block]) -> str:
    """One self-contained HTML page: inline CSS, figures as base64 PNG, no scripts, no links out."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h2>{html.escape(b.text)}</h2>")
        elif isinstance(b, Paragraph):
            parts.append(f'<p class="note">{html.escape(b.text)}</p>' if b.note else f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Bullets):
            parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            if b.caption:
                parts.append(f'<p class="note">{html.escape(b.caption)}</p>')
            parts.append(_html_table(b.frame))
        elif isinstance(b, Picture):
            data = base64.b64encode(b.png).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b.caption, quote=True)}">'
                f"<figcaption>{html.escape(b.caption)} (files: {html.escape(b.stem)}.png, {html.escape(b.stem)}.svg)"
                "</figcaption></figure>"
            )
        elif isinstance(b, Missing):
            parts.append(f'<p class="missing">{html.escape(b.text)}</p>')
        elif isinstance(b, Callout):
            items = []
            for head, details in b.items:
                sub = "".join(
                    f"<li{' class=warning' if d.startswith('warning:') else ''}>{html.escape(d)}</li>" for d in details
                )
                items.append(f"<li><b>{html.escape(head)}</b>" + (f"<ul>{sub}</ul>" if sub else "") + "</li>")
            note = f'<p class="note">{html.escape(b.note)}</p>' if b.note else ""
            parts.append(
                f'<section class="answer" id="recommendation"><h2>{html.escape(b.title)}</h2>'
                f"<ul>{''.join(items)}</ul>{note}</section>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def render_markdown(title: str, blocks: list[Block]) -> str:
    """The same report in Markdown; figures are linked as their PNG files."""
    parts = [f"# {title}"]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"## {b.text}")
        elif isinstance(b, Paragraph):
            parts.append(f"_{b.text}_" if b.note else b.text)
        elif isinstance(b, Bullets):
            parts.append("\n".join(f"- {i}" for i in b.items))
        elif isinstance(b, Table):
            parts.append((f"_{b.caption}_\n\n" if b.caption else "") + markdown_table(b.frame))
        elif isinstance(b, Picture):
            parts.append(f"![{b.caption}]({b.stem}.png)")
        elif isinstance(b, Missing):
            parts.append(f"> **Missing:** {b.text}")
        elif isinstance(b, Callout):
            lines = [f"## {b.title}", ""]
            for head, details in b.items:
                lines.append(f"- **{head}**")
                lines += [f"  - {d}" for d in details]
            parts.append("\n".join(lines) + (f"\n\n_{b.note}_" if b.note else ""))
    return "\n\n".join(parts) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write via a temporary file so a reader never sees half a page."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
