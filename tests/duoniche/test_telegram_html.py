"""The Telegram-HTML subset cleaner and visible-length helpers."""

import pytest

from duoniche.telegram_html import clean_telegram_html, truncate_visible, visible_length


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("<script>x</script><b>ok", "<b>ok</b>"),
        ("a < b & <b>c", "a &lt; b &amp; <b>c</b>"),
        ("<strong>1</strong><em>2</em><ins>3</ins>", "<b>1</b><i>2</i><u>3</u>"),
        ("<strike>a</strike><del>b</del><s>c</s>", "<s>a</s><s>b</s><s>c</s>"),
        ('<b class="x" onclick="evil()">bold</b>', "<b>bold</b>"),
        ('<code data-lang="bg">кафе</code>', "<code>кафе</code>"),
        ('<a href="https://example.org">link</a> <span>text</span>', "link text"),
        ("<h1>Title</h1>body", "Titlebody"),
        ("<style>b {color: red}</style>visible", "visible"),
        ("line<br>next<br/>last", "line\nnext\nlast"),
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("<ul><li>a</li><li>b</li></ul>", "- a\n- b"),
        ("&lt;b&gt; is a tag", "&lt;b&gt; is a tag"),
        ("it&#39;s &amp;amp; &quot;q&quot;", 'it\'s &amp;amp; "q"'),
        ("stray</b> closer</i>", "stray closer"),
        ("<b>1<i>2</b>3</i>", "<b>1<i>2</i></b><i>3</i>"),
        ("<b><b>x</b>y</b>", "<b>xy</b>"),
        ("a\n\n\n\n b", "a\n\n b"),
        ("  \n padded \n ", "padded"),
        ("<!-- note -->kept", "kept"),
        ("x <b", "x &lt;b"),
        ("", ""),
    ],
)
def test_cleaning(raw, cleaned):
    assert clean_telegram_html(raw) == cleaned


@pytest.mark.parametrize(
    "raw",
    ["<b>1<i>2</b>3</i>", "a < b & <b>c", "&lt;x&gt; <code>a &amp; b</code>", "<li>x<p>y"],
)
def test_cleaning_is_idempotent(raw):
    once = clean_telegram_html(raw)

    assert clean_telegram_html(once) == once


def test_visible_length_ignores_tags_and_counts_entities_once():
    assert visible_length("<b>a&amp;b</b> &lt;c&gt;") == 7


def test_truncation_cuts_at_a_word_boundary_and_closes_tags():
    text = "<b>one two</b> <i>three &amp; four</i>"

    result = truncate_visible(text, 14)

    assert result == "<b>one two</b> <i>three</i>…"
    assert visible_length(result) <= 14


def test_truncation_never_splits_an_entity():
    result = truncate_visible("abcdefgh&amp;ijkl", 10)

    assert result in {"abcdefgh&amp;…", "abcdefgh…"}
    assert visible_length(result) <= 10


def test_short_text_is_left_alone():
    assert truncate_visible("<b>short</b>", 50) == "<b>short</b>"
