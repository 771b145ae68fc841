"""One document model for the reports people read: built once, written as Markdown, HTML and Slack text.

A report builds a Document (a title, then headings, paragraphs, facts, lists, tables and charts) and the
renderers here write it in each format, so the formats cannot drift apart. Every renderer escapes text for its
format, so stored text (reasons, names, evidence) cannot inject markup, and only a plain http(s) URL becomes a
link. Charts are drawn for HTML only (Markdown and Slack text have nowhere to put an image), when the page is
rendered; a chart that cannot be drawn is said in its place instead of losing the report.
"""
from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

# A Slack section holds 3,000 characters and a longer message text is shown cut: a summary people read.
SLACK_MAX_CHARS = 3000

# A status people see as a colour: a table row's background, a heading's colour.
Tone = Literal["", "fail", "error", "warn", "note", "pass", "muted"]


@dataclass(frozen=True)
class Code:
    """A query, an identifier or a label set, shown as it is."""

    text: str


@dataclass(frozen=True)
class Link:
    """Linked when `url` is a plain http(s) URL (see safe_url); otherwise only the label is shown."""

    label: str
    url: str


@dataclass(frozen=True)
class Strong:
    text: str


Span = str | Code | Link | Strong
Text = str | tuple[Span, ...]  # a plain string, or spans written one after the other


@dataclass(frozen=True)
class Heading:
    level: int  # 2 for a section, 3 within it: the document's title is the only level 1
    text: str
    tone: Tone = ""


@dataclass(frozen=True)
class Paragraph:
    text: Text
    style: Literal["", "strong", "meta", "alert"] = ""  # alert: a red box in HTML, what must not be missed


@dataclass(frozen=True)
class Facts:
    """Labelled values, one a line."""

    items: Sequence[tuple[str, Text]]


@dataclass(frozen=True)
class BulletList:
    title: str
    items: Sequence[Text]
    numbered: bool = False


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Text]]
    title: str = ""
    row_tones: Sequence[Tone] = ()
    note: str = ""  # under the table, e.g. how many rows were left out


@dataclass(frozen=True)
class Chart:
    """A PNG drawn only when HTML is rendered (drawing takes a while); None from `draw` leaves it out."""

    alt: str
    draw: Callable[[], bytes | None]
    name: str = ""  # filename-safe, for a report that also writes its charts as PNG files


Block = Heading | Paragraph | Facts | BulletList | Table | Chart


@dataclass(frozen=True)
class Document:
    title: str  # the level-1 heading, the HTML page title, the first line in Slack; "" for none
    blocks: Sequence[Block]


_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`|]+$", re.IGNORECASE)


def safe_url(url: object) -> str | None:
    """The URL when it is http(s) and plain; anything else (javascript:, data:, quotes, <>) is not linked."""
    s = url.strip() if isinstance(url, str) else ""
    return s if _SAFE_URL.match(s) else None


def _spans(text: Text) -> tuple[Span, ...]:
    return (text,) if isinstance(text, str) else text


def _write_spans(text: Text, *, plain: Callable[[str], str], code: Callable[[str], str],
                 link: Callable[[str, str], str], strong: Callable[[str], str]) -> str:
    """The spans in one format: a link only to a safe URL (else its label alone), an empty strong span as nothing."""
    out = []
    for span in _spans(text):
        if isinstance(span, Code):
            out.append(code(span.text))
        elif isinstance(span, Link):
            url = safe_url(span.url)
            out.append(link(span.label, url) if url else plain(span.label))
        elif isinstance(span, Strong):
            out.append(strong(span.text) if span.text.strip() else "")
        else:
            out.append(plain(span))
    return "".join(out)


def _one_line(text: str) -> str:
    """Whitespace runs as one space (a newline would end a Markdown table row or a Slack line); edges kept, as
    spans join up."""
    return re.sub(r"\s+", " ", text)


# ---------------------------------------------------------------------------------------------------------------
# Markdown


def _md(text: str, cell: bool = False) -> str:
    """`<` as an entity, so stored text cannot smuggle in raw HTML; `|` escaped in a table cell."""
    out = _one_line(text).replace("<", "&lt;")
    return out.replace("|", "\\|") if cell else out


def _md_code(text: str, cell: bool = False) -> str:
    s = _one_line(text).strip()
    if cell:
        s = s.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence, pad = "`" * (longest + 1), " " if longest else ""  # a fence longer than any backtick run inside
    return f"{fence}{pad}{s}{pad}{fence}"


def _md_text(text: Text, cell: bool = False) -> str:
    def link(label: str, url: str) -> str:
        label = _md(label, cell).replace("[", "\\[").replace("]", "\\]")
        return f"[{label}]({url.replace('(', '%28').replace(')', '%29')})"

    return _write_spans(text, plain=lambda s: _md(s, cell), code=lambda s: _md_code(s, cell), link=link,
                        strong=lambda s: f"**{_md(s, cell)}**").strip()


def _md_table(table: Table) -> str:
    lines = [f"**{_md(table.title)}**", ""] if table.title else []
    lines.append("| " + " | ".join(_md(h, cell=True) or " " for h in table.header) + " |")
    lines.append("|" + "---|" * len(table.header))
    lines += ["| " + " | ".join(_md_text(c, cell=True) or " " for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"({_md(table.note)})"]
    return "\n".join(lines)


@dataclass(frozen=True)
class _Markup:
    """How a plain-text markup (Markdown, Slack mrkdwn) writes the blocks: the two differ only in their marks."""

    escape: Callable[[str], str]
    text: Callable[[Text], str]
    heading: Callable[[Heading], str]
    table: Callable[[Table], str]
    strong: str
    emphasis: str
    bullet: str
    after_title: str  # between a list's title and its items


def _markup_parts(document: Document, markup: _Markup) -> list[str]:
    """The title and each block as text; a chart has no place in plain text (it is posted as a file)."""
    m = markup
    parts = [m.heading(Heading(1, document.title))] if document.title else []
    for block in document.blocks:
        if isinstance(block, Heading):
            parts.append(m.heading(block))
        elif isinstance(block, Paragraph) and (text := m.text(block.text)):
            mark = m.strong if block.style in ("strong", "alert") else m.emphasis if block.style == "meta" else ""
            parts.append(f"{mark}{text}{mark}")
        elif isinstance(block, Facts):
            parts.append("\n".join(f"{m.bullet} {m.strong}{m.escape(label)}:{m.strong} {m.text(value)}"
                                   for label, value in block.items))
        elif isinstance(block, BulletList):
            marks = [f"{i}." if block.numbered else m.bullet for i in range(1, len(block.items) + 1)]
            items = "\n".join(f"{mark} {m.text(i)}" for mark, i in zip(marks, block.items, strict=True))
            parts.append(f"{m.strong}{m.escape(block.title)}:{m.strong}{m.after_title}{items}" if block.title
                         else items)
        elif isinstance(block, Table):
            parts.append(m.table(block))
    return [part for part in parts if part]


_MARKDOWN = _Markup(_md, _md_text, lambda h: f"{'#' * h.level} {_md(h.text).strip()}", _md_table,
                    strong="**", emphasis="*", bullet="-", after_title="\n\n")


def render_markdown(document: Document) -> str:
    """Markdown (GitHub's flavour, for its tables), raw HTML in stored text shown as text."""
    return "\n\n".join(_markup_parts(document, _MARKDOWN)) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top;font-size:.92em}th{background:#f3f3f3}
tr.t-fail td{background:#fde8e8}tr.t-error td{background:#f3e8fa}tr.t-warn td{background:#fff4dc}
tr.t-note td{background:#e8f0fb}tr.t-pass td{background:#eaf7ea}tr.t-muted td{color:#777}
h2{border-top:1px solid #ddd;padding-top:1em}.t-fail:is(h2,h3){color:#b00020}.t-error:is(h2,h3){color:#6a1b9a}
.t-warn:is(h2,h3){color:#a05a00}.meta{color:#666;font-size:.9em}.strong{font-weight:bold}
.note{color:#666;font-size:.85em}.alert{background:#b00020;color:#fff;padding:.6em 1em;border-radius:4px;
font-weight:bold}code{background:#f5f5f5;padding:0 3px}img{max-width:100%;border:1px solid #ddd}
"""


def _class(name: str) -> str:
    return f' class="{name}"' if name else ""


def _html_text(text: Text) -> str:
    e = html.escape
    return _write_spans(text, plain=e, code=lambda s: f"<code>{e(s)}</code>",
                        link=lambda label, url: f'<a href="{e(url, quote=True)}">{e(label)}</a>',
                        strong=lambda s: f"<b>{e(s)}</b>")


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    rows = []
    for i, row in enumerate(table.rows):
        tone = table.row_tones[i] if i < len(table.row_tones) else ""
        rows.append(f"<tr{_class(tone and f't-{tone}')}>" + "".join(f"<td>{_html_text(c)}</td>" for c in row)
                    + "</tr>")
    title = f"<p><b>{html.escape(table.title)}</b></p>" if table.title else ""
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}"


def _html_chart(chart: Chart) -> str:
    try:
        png = chart.draw()
    except (ValueError, TypeError, KeyError, OverflowError) as exc:  # odd stored data must not lose the report
        return f'<p class="note">chart unavailable ({html.escape(chart.alt)}): {html.escape(_one_line(str(exc)))}</p>'
    if not png:
        return ""
    return (f'<img alt="{html.escape(chart.alt, quote=True)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def _html_block(block: Block) -> str:
    e = html.escape
    if isinstance(block, Heading):
        return f"<h{block.level}{_class(block.tone and f't-{block.tone}')}>{e(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p{_class(block.style)}>{_html_text(block.text)}</p>"
    if isinstance(block, Facts):
        return "<ul>" + "".join(f"<li><b>{e(label)}:</b> {_html_text(value)}</li>" for label, value in block.items) \
            + "</ul>"
    if isinstance(block, BulletList):
        tag = "ol" if block.numbered else "ul"
        title = f"<p><b>{e(block.title)}:</b></p>" if block.title else ""
        return f"{title}<{tag}>" + "".join(f"<li>{_html_text(i)}</li>" for i in block.items) + f"</{tag}>"
    if isinstance(block, Table):
        return _html_table(block)
    return _html_chart(block)


def render_html(document: Document) -> str:
    """One self-contained page: inline CSS, charts as base64 PNG, nothing loaded from elsewhere."""
    title = html.escape(document.title)
    parts = [f"<h1>{title}</h1>"] if document.title else []
    parts += [text for text in map(_html_block, document.blocks) if text]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{title}</title><style>{_CSS}</style></head><body>\n" + "\n".join(parts)
            + "\n</body></html>\n")


# ---------------------------------------------------------------------------------------------------------------
# Slack mrkdwn


def _slack_escape(text: str) -> str:
    """&, < and > escaped (they start entities and links: `<!channel>` would ping everyone)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(text: str) -> str:
    return _slack_escape(_one_line(text))


def _slack_code(text: str) -> str:
    return _slack_escape(text).replace("`", "'")  # mrkdwn has no escape: a backtick would end the code early


def _slack_text(text: Text) -> str:
    return _write_spans(text, plain=_slack, code=lambda s: f"`{_slack_code(_one_line(s).strip())}`",
                        link=lambda label, url: f"<{url}|{_slack(label)}>", strong=lambda s: f"*{_slack(s)}*").strip()


def _plain(text: Text) -> str:
    """The text people read, without markup (a table cell in a code block)."""
    return _one_line(_write_spans(text, plain=str, code=str, link=lambda label, _: label, strong=str)).strip()


def _slack_table(table: Table) -> str:
    """Slack has no tables: the rows as aligned columns in a code block."""
    cells = [[_plain(c) for c in row] for row in (table.header, *table.rows)]
    widths = [max(len(row[i]) if i < len(row) else 0 for row in cells) for i in range(len(table.header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
             for row in cells]
    out = [f"*{_slack(table.title)}*"] if table.title else []
    out.append("```\n" + "\n".join(_slack_code(line) for line in lines) + "\n```")
    if table.note:
        out.append(f"_({_slack(table.note)})_")
    return "\n".join(out)


_SLACK = _Markup(_slack, _slack_text, lambda h: f"*{_slack(h.text).strip()}*", _slack_table,
                 strong="*", emphasis="_", bullet="•", after_title="\n")


def _more(left_out: int) -> str:
    return f"… +{left_out} more in the full report"


def render_slack(document: Document, *, max_chars: int = SLACK_MAX_CHARS) -> str:
    """Slack mrkdwn, one line or more per block, at most `max_chars` characters: the blocks that do not fit are
    left out from the first that does not, counted in a last "… +N more in the full report" line."""
    parts = _markup_parts(document, _SLACK)
    if not parts:
        return ""
    room_for_more = 1 + len(_more(len(parts) - 1)) if len(parts) > 1 else 0
    first = parts[0] if len(parts[0]) + room_for_more <= max_chars else \
        parts[0][: max_chars - room_for_more - 1] + "…"
    lines, used = [first], len(first)
    for i, part in enumerate(parts[1:], start=1):
        left_after = len(parts) - i - 1
        room_for_more = 1 + len(_more(left_after)) if left_after else 0
        if used + 1 + len(part) + room_for_more > max_chars:
            lines.append(_more(len(parts) - i))
            break
        lines.append(part)
        used += 1 + len(part)
    return "\n".join(lines)
