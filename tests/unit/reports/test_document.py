"""The report document model: escaping per format, tables, charts, Slack's length, one document said alike."""
from __future__ import annotations

import base64
import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamesre.reports.document import (
    SLACK_MAX_CHARS,
    BulletList,
    Chart,
    Code,
    Document,
    Facts,
    Heading,
    Link,
    Paragraph,
    Strong,
    Table,
    render_html,
    render_markdown,
    render_slack,
    safe_url,
)

PNG = b"\x89PNG\r\n\x1a\nnot really a picture"
EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def page_text(page: str) -> str:
    """What a browser shows of the body: tags dropped, entities decoded, whitespace folded."""
    body = page.split("<body>", 1)[1]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def everything() -> Document:
    """One block of each kind, with words that can be found in every format."""
    return Document("Weekly report", [
        Paragraph("alpha summary", "strong"),
        Heading(2, "bravo section", "fail"),
        Paragraph(("charlie ", Code("rate(x[5m])"), " delta ", Link("echo link", "https://example.com/e?a=1&b=2"))),
        Facts([("foxtrot label", "golf value"), ("hotel", (Strong("india"),))]),
        BulletList("juliet", ["kilo item", ("lima ", Code("mike"))], numbered=True),
        Table(("november", "oscar"), [("papa", "quebec"), ("romeo", ("sierra ", Code("tango")))],
              title="uniform table", row_tones=("fail", "pass"), note="victor note"),
        Paragraph("whiskey warning", "alert"),
        Paragraph("xray meta", "meta"),
    ])


WORDS = ("Weekly report", "alpha summary", "bravo section", "charlie", "rate(x[5m])", "delta", "echo link",
         "foxtrot label", "golf value", "hotel", "india", "juliet", "kilo item", "lima", "mike", "uniform table",
         "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "victor note", "whiskey warning",
         "xray meta")


def test_the_same_document_says_the_same_words_in_the_same_order_in_every_format() -> None:
    doc = everything()
    md, page, slack = render_markdown(doc), render_html(doc), render_slack(doc)
    for rendered in (md, page_text(render_html(doc)), slack):
        positions = [rendered.find(word) for word in WORDS]
        assert -1 not in positions, [w for w, p in zip(WORDS, positions, strict=True) if p == -1]
        assert positions == sorted(positions)
    assert md.startswith("# Weekly report\n\n**alpha summary**\n\n## bravo section\n")
    assert "<h1>Weekly report</h1>" in page and "<title>Weekly report</title>" in page
    assert slack.startswith("*Weekly report*\n*alpha summary*\n*bravo section*\n")


def test_each_format_marks_up_the_spans_and_styles() -> None:
    doc = everything()
    md, page, slack = render_markdown(doc), render_html(doc), render_slack(doc)

    assert "charlie `rate(x[5m])` delta [echo link](https://example.com/e?a=1&b=2)" in md
    assert "- **foxtrot label:** golf value\n- **hotel:** **india**" in md
    assert "**juliet:**\n\n1. kilo item\n2. lima `mike`" in md
    assert "**whiskey warning**" in md and "*xray meta*" in md

    assert ('<p>charlie <code>rate(x[5m])</code> delta <a href="https://example.com/e?a=1&amp;b=2">echo link</a>'
            "</p>") in page
    assert '<h2 class="t-fail">bravo section</h2>' in page
    assert "<ol><li>kilo item</li><li>lima <code>mike</code></li></ol>" in page
    assert '<p class="alert">whiskey warning</p>' in page and '<p class="meta">xray meta</p>' in page

    assert "charlie `rate(x[5m])` delta <https://example.com/e?a=1&b=2|echo link>" in slack
    assert "• *foxtrot label:* golf value\n• *hotel:* *india*" in slack
    assert "*juliet:*\n1. kilo item\n2. lima `mike`" in slack
    assert "*whiskey warning*" in slack and "_xray meta_" in slack


def test_a_table_in_each_format() -> None:
    table = Table(("name", "value"), [("a", "1"), ("longer name", ("x ", Code("q"))), ("", "3")],
                  title="numbers", row_tones=("fail", "", "muted"), note="2 more rows not shown")
    doc = Document("", [table])

    assert render_markdown(doc) == ("**numbers**\n\n| name | value |\n|---|---|\n| a | 1 |\n| longer name | x `q` |\n"
                                    "|   | 3 |\n\n(2 more rows not shown)\n")
    page = render_html(doc)
    assert ("<p><b>numbers</b></p><table><thead><tr><th>name</th><th>value</th></tr></thead><tbody>"
            '<tr class="t-fail"><td>a</td><td>1</td></tr><tr><td>longer name</td><td>x <code>q</code></td></tr>'
            '<tr class="t-muted"><td></td><td>3</td></tr></tbody></table><p class="note">2 more rows not shown</p>'
            ) in page
    # Slack has no tables: aligned columns in a code block
    assert render_slack(doc) == ("*numbers*\n```\nname         value\na            1\nlonger name  x q\n"
                                 "             3\n```\n_(2 more rows not shown)_")


def test_html_escapes_every_text_and_links_only_plain_http() -> None:
    doc = Document(EVIL, [
        Heading(2, EVIL), Paragraph((EVIL, Code(EVIL), Link(EVIL, "javascript:alert(1)"), Strong(EVIL))),
        Facts([(EVIL, EVIL)]), BulletList(EVIL, [EVIL]), Table((EVIL,), [(EVIL,)], title=EVIL, note=EVIL),
        Paragraph((Link("ok", "https://grafana.example/d/a?x=1&y=2"),)),
        Chart('chart "quoted" <alt>', lambda: PNG),
    ])
    page = render_html(doc)
    assert "<script>" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;") \
        == 15  # <title>, <h1>, the heading and every span, fact, list item, title, cell and note
    assert "javascript:" not in page  # an unsafe link is its label alone
    assert '<a href="https://grafana.example/d/a?x=1&amp;y=2">ok</a>' in page
    assert 'alt="chart &quot;quoted&quot; &lt;alt&gt;"' in page
    # self-contained: nothing is loaded from elsewhere
    assert not re.search(r'src="(?!data:)|<link|<script', page)
    assert re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page) == [base64.b64encode(PNG).decode()]


def test_markdown_escapes_raw_html_table_pipes_code_fences_and_links() -> None:
    doc = Document("a <b>title</b>", [
        Paragraph(("text <script> & ", Code("has ` a backtick"), " ", Link("label [x]", "https://e.com/a_(b)"),
                   " ", Link("bad", "javascript:alert(1)"))),
        Table(("h|1",), [(("a | b\nc ", Code("x|y")),)]),
    ])
    md = render_markdown(doc)
    assert md.startswith("# a &lt;b>title&lt;/b>\n")
    assert "text &lt;script> & `` has ` a backtick `` [label \\[x\\]](https://e.com/a_%28b%29) bad\n" in md
    assert "](javascript" not in md
    # a pipe or a newline in a cell cannot break the row
    assert "| h\\|1 |\n|---|\n| a \\| b c `x\\|y` |\n" in md


def test_slack_escapes_what_starts_entities_and_mentions() -> None:
    doc = Document("", [Paragraph(("<!channel> & co ", Strong("<b>"), " ", Code("a`b <c>"),
                                   " ", Link("run <1>", "https://e.com/r?a=1"), " ", Link("x", "data:text/html,")))])
    assert render_slack(doc) == ("&lt;!channel&gt; &amp; co *&lt;b&gt;* `a'b &lt;c&gt;` "
                                 "<https://e.com/r?a=1|run &lt;1&gt;> x")


def test_slack_text_keeps_the_first_blocks_that_fit_and_counts_the_rest() -> None:
    doc = Document("Daily", [Paragraph(f"item {i:02d} " + "x" * 90) for i in range(100)])
    text = render_slack(doc)
    lines = text.splitlines()
    assert len(text) <= SLACK_MAX_CHARS
    assert lines[0] == "*Daily*"
    shown = lines[1:-1]
    assert [line[:7] for line in shown] == [f"item {i:02d}" for i in range(len(shown))]
    assert lines[-1] == f"… +{100 - len(shown)} more in the full report"
    assert render_slack(Document("Daily", doc.blocks[:3])).count("\n") == 3  # short enough: everything, no count


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 700), max_size=40), st.integers(100, 4000))
def test_slack_text_never_exceeds_its_limit(lengths: list[int], limit: int) -> None:
    doc = Document("T" * 50, [Paragraph("y" * n) for n in lengths])
    text = render_slack(doc, max_chars=limit)
    assert len(text) <= limit
    last = text.splitlines()[-1]
    if last.startswith("… +"):
        shown = len(text.splitlines()) - 2  # the title and the count
        assert last == f"… +{sum(1 for n in lengths if n) - shown} more in the full report"


def test_a_first_block_longer_than_slack_allows_is_cut() -> None:
    text = render_slack(Document("", [Paragraph("z" * 5000), Paragraph("w" * 400)]), max_chars=300)
    assert len(text) <= 300
    first, more = text.splitlines()
    assert first.endswith("z…") and more == "… +1 more in the full report"
    assert render_slack(Document("", [Paragraph("z" * 5000)]), max_chars=300) == "z" * 299 + "…"


def test_charts_are_drawn_only_for_html_and_a_broken_one_is_said() -> None:
    calls: list[str] = []

    def draw(name: str, result: bytes | None = PNG) -> bytes | None:
        calls.append(name)
        return result

    def broken() -> bytes | None:
        raise ValueError("no <numbers>")

    doc = Document("charts", [Chart("fine", lambda: draw("fine")), Chart("empty", lambda: draw("empty", None)),
                              Chart("broken", broken)])
    assert render_markdown(doc) == "# charts\n" and render_slack(doc) == "*charts*"
    assert calls == []
    page = render_html(doc)
    assert calls == ["fine", "empty"]
    assert page.count("<img") == 1 and 'alt="fine"' in page and 'alt="empty"' not in page
    assert '<p class="note">chart unavailable (broken): no &lt;numbers&gt;</p>' in page


@pytest.mark.parametrize(("url", "safe"), [
    ("https://grafana.example/d/a?x=1&y=2", True),
    ("  http://localhost:8080/dags/x/runs/1 ", True),
    ("javascript:alert(1)", False),
    ("data:text/html,<script>", False),
    ('https://e.com/"onmouseover="x', False),
    ("https://e.com/a b", False),
    ("https://e.com/a|b", False),
    ("/relative/path.html", False),
    (None, False),
    (42, False),
])
def test_only_plain_http_urls_are_safe(url: object, safe: bool) -> None:
    assert (safe_url(url) is not None) is safe
