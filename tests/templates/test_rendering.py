import pytest

from notify.templates.rendering import (
    MissingPersonalisationError,
    Personalisation,
    RenderedEmail,
    RenderedSms,
    fill_email,
    missing_personalisation,
    normalise_placeholder,
    placeholders,
    render_email,
    render_sms,
    sms_encoding,
)

EMAIL_CASES = [
    pytest.param(
        "Hello ((name))",
        "Dear ((name)),\n\nWelcome.",
        {"name": "Ann"},
        RenderedEmail(
            subject="Hello Ann",
            body="Dear Ann,\n\nWelcome.",
            html="<p>Dear Ann,</p>\n<p>Welcome.</p>\n",
            text="Dear Ann,\n\nWelcome.",
        ),
        id="simple-placeholder",
    ),
    pytest.param(
        "For ((First Name))",
        "((First Name)) ((first_name)) ((FIRST-NAME)) (( firstname ))",
        {"first_name": "Ann"},
        RenderedEmail(
            subject="For Ann", body="Ann Ann Ann Ann", html="<p>Ann Ann Ann Ann</p>\n", text="Ann Ann Ann Ann"
        ),
        id="name-matching-ignores-case-spaces-underscores-hyphens",
    ),
    pytest.param(
        "",
        "Ref ((reference_number))",
        {"Reference Number": "R-1"},
        RenderedEmail(subject="", body="Ref R-1", html="<p>Ref R-1</p>\n", text="Ref R-1"),
        id="personalisation-key-is-normalised-too",
    ),
    pytest.param(
        "Hi((vip??, valued customer))",
        "Hello((vip??, valued customer)).((vip??\n\nYou get **free** delivery.))",
        {"vip": "yes"},
        RenderedEmail(
            subject="Hi, valued customer",
            body="Hello, valued customer.\n\nYou get **free** delivery.",
            html="<p>Hello, valued customer.</p>\n<p>You get <strong>free</strong> delivery.</p>\n",
            text="Hello, valued customer.\n\nYou get free delivery.",
        ),
        id="conditional-shown",
    ),
    pytest.param(
        "Hi((vip??, valued customer))",
        "Hello((vip??, valued customer)).((vip??\n\nYou get **free** delivery.))",
        {},
        RenderedEmail(subject="Hi", body="Hello.", html="<p>Hello.</p>\n", text="Hello."),
        id="conditional-missing-is-hidden-and-not-required",
    ),
    pytest.param(
        "Order: ((items))",
        "You ordered:\n((items))\nThanks",
        {"items": ["Tea", "", None, "Cake"]},
        RenderedEmail(
            subject="Order: Tea, Cake",
            body="You ordered:\n\n* Tea\n* Cake\n\nThanks",
            html="<p>You ordered:</p>\n<ul>\n<li>Tea</li>\n<li>Cake</li>\n</ul>\n<p>Thanks</p>\n",
            text="You ordered:\n\n• Tea\n• Cake\n\nThanks",
        ),
        id="list-becomes-bullets-and-drops-empty-items",
    ),
    pytest.param(
        "",
        "A\n\n((items))\n\nB",
        {"items": ["Tea", "Cake"]},
        RenderedEmail(
            subject="",
            body="A\n\n* Tea\n* Cake\n\nB",
            html="<p>A</p>\n<ul>\n<li>Tea</li>\n<li>Cake</li>\n</ul>\n<p>B</p>\n",
            text="A\n\n• Tea\n• Cake\n\nB",
        ),
        id="list-already-on-its-own-lines-adds-no-blank-lines",
    ),
    pytest.param(
        "",
        "((items))",
        {"items": []},
        RenderedEmail(subject="", body="", html="", text=""),
        id="empty-list-renders-nothing",
    ),
    pytest.param(
        "Re: ((name))",
        "Hello ((name))",
        {"name": "<script>alert(1)</script>"},
        RenderedEmail(
            subject="Re: <script>alert(1)</script>",
            body="Hello <script>alert(1)</script>",
            html="<p>Hello &lt;script&gt;alert(1)&lt;/script&gt;</p>\n",
            text="Hello <script>alert(1)</script>",
        ),
        id="script-value-is-escaped-in-html-only",
    ),
    pytest.param(
        "",
        "((company))\n((items))",
        {"company": "&lt;b&gt; & Co", "items": ["<i>x</i>", "R&D"]},
        RenderedEmail(
            subject="",
            body="&lt;b&gt; & Co\n\n* <i>x</i>\n* R&D",
            html="<p>&amp;lt;b&amp;gt; &amp; Co</p>\n<ul>\n<li>&lt;i&gt;x&lt;/i&gt;</li>\n<li>R&amp;D</li>\n</ul>\n",
            text="&lt;b&gt; & Co\n\n• <i>x</i>\n• R&D",
        ),
        id="entities-in-values-stay-literal",
    ),
    pytest.param(
        "",
        "<b>hi</b> ((link))",
        {"link": "[click](javascript:alert(1))"},
        RenderedEmail(
            subject="",
            body="<b>hi</b> [click](javascript:alert(1))",
            html="<p>&lt;b&gt;hi&lt;/b&gt; [click](javascript:alert(1))</p>\n",
            text="<b>hi</b> [click](javascript:alert(1))",
        ),
        id="raw-html-and-javascript-links-are-not-rendered",
    ),
    pytest.param(
        "Welcome",
        "# Title\n\nSome **bold** and a [link](https://example.com/((page))).\nNext line\n\nSecond paragraph",
        {"page": "a"},
        RenderedEmail(
            subject="Welcome",
            body="# Title\n\nSome **bold** and a [link](https://example.com/a).\nNext line\n\nSecond paragraph",
            html=(
                "<h1>Title</h1>\n"
                '<p>Some <strong>bold</strong> and a <a href="https://example.com/a">link</a>.<br />\n'
                "Next line</p>\n"
                "<p>Second paragraph</p>\n"
            ),
            text="Title\n\nSome bold and a link: https://example.com/a.\nNext line\n\nSecond paragraph",
        ),
        id="markdown-heading-bold-link-paragraphs",
    ),
    pytest.param(
        "",
        "1. one\n2. two\n   * nested\n\n---\n\nMail <help@example.com> or see <https://example.com>",
        {},
        RenderedEmail(
            subject="",
            body="1. one\n2. two\n   * nested\n\n---\n\nMail <help@example.com> or see <https://example.com>",
            html=(
                "<ol>\n<li>one</li>\n<li>two\n<ul>\n<li>nested</li>\n</ul>\n</li>\n</ol>\n<hr />\n"
                '<p>Mail <a href="mailto:help@example.com">help@example.com</a> or see '
                '<a href="https://example.com">https://example.com</a></p>\n'
            ),
            text=(
                "1. one\n2. two\n   • nested\n\n" + "-" * 40 + "\n\nMail help@example.com or see https://example.com"
            ),
        ),
        id="markdown-ordered-nested-rule-autolinks",
    ),
    pytest.param(
        "Total ((amount))",
        "You owe ((amount)) for ((count)) items",
        {"amount": 12.5, "count": 0},
        RenderedEmail(
            subject="Total 12.5",
            body="You owe 12.5 for 0 items",
            html="<p>You owe 12.5 for 0 items</p>\n",
            text="You owe 12.5 for 0 items",
        ),
        id="numbers-including-zero",
    ),
    pytest.param(
        "  Line one\r\n\n  line two  ",
        "(((colour)))",
        {"colour": "blue"},
        RenderedEmail(subject="Line one line two", body="(blue)", html="<p>(blue)</p>\n", text="(blue)"),
        id="subject-is-one-line-and-triple-parentheses",
    ),
    pytest.param(
        "",
        "((a)) ((b))",
        {"a": "((b))", "b": "B"},
        RenderedEmail(subject="", body="((b)) B", html="<p>((b)) B</p>\n", text="((b)) B"),
        id="values-are-not-scanned-for-placeholders",
    ),
]


@pytest.mark.parametrize(("subject", "content", "personalisation", "expected"), EMAIL_CASES)
def test_render_email(subject: str, content: str, personalisation: Personalisation, expected: RenderedEmail) -> None:
    assert render_email(subject, content, personalisation) == expected
    assert fill_email(subject, content, personalisation) == (expected.subject, expected.body)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, True),
        ("yes", True),
        ("Y", True),
        (" TRUE ", True),
        ("1", True),
        ("oui", True),
        ("afficher", True),
        (1, True),
        (2.5, True),
        (-1, True),
        (["no", "yes"], True),
        (False, False),
        ("no", False),
        ("", False),
        (None, False),
        (0, False),
        (0.0, False),
        ("maybe", False),
        ("false", False),
        ([], False),
    ],
)
def test_conditional_truthiness(value: object, shown: bool) -> None:
    rendered = render_sms("Hi((vip??, valued customer)).", {"VIP": value})
    assert rendered.body == ("Hi, valued customer." if shown else "Hi.")


def test_missing_personalisation_error_lists_all_names_in_order_of_first_appearance() -> None:
    with pytest.raises(MissingPersonalisationError) as raised:
        render_email("((Subject Thing))", "((b)) ((a)) ((opt??x)) ((B)) ((present))", {"a": None, "present": ""})
    assert raised.value.names == ["Subject Thing", "b", "a"]
    assert str(raised.value) == "Missing personalisation: Subject Thing, b, a"


def test_render_sms_raises_for_missing_personalisation() -> None:
    with pytest.raises(MissingPersonalisationError) as raised:
        render_sms("((code)) ((Name))", {"name": "Ann"}, prefix="Svc")
    assert raised.value.names == ["code"]


@pytest.mark.parametrize(
    ("texts", "personalisation", "missing"),
    [
        (("((a)) ((b??text))",), {}, ["a"]),
        (("((b??text))", "((B))"), {}, ["b"]),
        (("((a)) ((b))",), {"A": "", "b": []}, []),
        (("((a)) ((b))",), {"a": None, "b": 0}, ["a"]),
        (("((first name))",), {"FIRST_NAME": "x"}, []),
        ((), {}, []),
    ],
)
def test_missing_personalisation(texts: tuple[str, ...], personalisation: Personalisation, missing: list[str]) -> None:
    assert missing_personalisation(personalisation, *texts) == missing


def test_placeholders_are_unique_by_normalised_name_in_order() -> None:
    found = placeholders("((a)) (( B_b ?? x)) ((b-B)) ((  )) (((c)))", "((C)) ((d))")
    assert found == ["a", "B_b", "c", "d"]


@pytest.mark.parametrize(
    ("name", "key"),
    [("First Name", "firstname"), ("FIRST-name_x", "firstnamex"), ("  a\tb ", "ab"), ("café", "café")],
)
def test_normalise_placeholder(name: str, key: str) -> None:
    assert normalise_placeholder(name) == key


SMS_CASES = [
    pytest.param("Hi ((name))", {"name": "Ann"}, None, RenderedSms("Hi Ann", "GSM-7", 6, 1), id="simple"),
    pytest.param(
        "Your code is ((code))",
        {"code": 123456},
        "GC Notify",
        RenderedSms("GC Notify: Your code is 123456", "GSM-7", 30, 1),
        id="prefix-and-number",
    ),
    pytest.param("  \n Hi ((name))\n \n", {"name": "Ann "}, None, RenderedSms("Hi Ann", "GSM-7", 6, 1), id="stripped"),
    pytest.param("a\r\nb\rc", {}, None, RenderedSms("a\nb\nc", "GSM-7", 5, 1), id="newlines-normalised"),
    pytest.param(
        "Bring:\n((items))\nThanks",
        {"items": ["pen", None, "paper"]},
        None,
        RenderedSms("Bring:\n• pen\n• paper\nThanks", "UCS-2", 27, 1),
        id="list-as-bullet-lines",
    ),
    pytest.param(
        "Bring: ((items)) today",
        {"items": ["pen", "paper"]},
        None,
        RenderedSms("Bring: \n• pen\n• paper\n today", "UCS-2", 28, 1),
        id="inline-list-moves-to-its-own-lines",
    ),
    pytest.param("Hi <b>((x))</b>", {"x": "&"}, None, RenderedSms("Hi <b>&</b>", "GSM-7", 11, 1), id="no-escaping"),
    pytest.param("Price: ((p))", {"p": "5€ {x}"}, None, RenderedSms("Price: 5€ {x}", "GSM-7", 16, 1), id="extension"),
    pytest.param("x" * 155, {}, "Svc", RenderedSms("Svc: " + "x" * 155, "GSM-7", 160, 1), id="prefix-counts-160"),
    pytest.param("x" * 156, {}, "Svc", RenderedSms("Svc: " + "x" * 156, "GSM-7", 161, 2), id="prefix-counts-161"),
    pytest.param("Hi", {}, "", RenderedSms("Hi", "GSM-7", 2, 1), id="empty-prefix-ignored"),
]


@pytest.mark.parametrize(("content", "personalisation", "prefix", "expected"), SMS_CASES)
def test_render_sms(content: str, personalisation: Personalisation, prefix: str | None, expected: RenderedSms) -> None:
    assert render_sms(content, personalisation, prefix=prefix) == expected


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Hello, world! 123 @£$¥", "GSM-7"),
        ("é è ù ì ò à Ç Ä Ö Ñ Ü ä ö ñ ü ß Æ æ Ø ø Å å É", "GSM-7"),
        ("ΔΦΓΛΩΠΨΣΘΞ ¡¿ § ¤", "GSM-7"),
        ("[]{}^~|€\\", "GSM-7"),
        ("Ça va", "GSM-7"),
        ("ça va", "UCS-2"),
        ("Zoë", "UCS-2"),
        ("fête", "UCS-2"),
        ("`code`", "UCS-2"),
        ("\u2019smart quote\u2019", "UCS-2"),
        ("😀", "UCS-2"),
        ("•", "UCS-2"),
        ("", "GSM-7"),
    ],
)
def test_sms_encoding(text: str, encoding: str) -> None:
    assert sms_encoding(text) == encoding


@pytest.mark.parametrize(
    ("content", "encoding", "characters", "fragments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("a" * 612, "GSM-7", 612, 4),
        ("a" * 613, "GSM-7", 613, 5),
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 80 + "a", "GSM-7", 161, 2),
        ("{}[]" * 2, "GSM-7", 16, 1),
        ("ç" * 70, "UCS-2", 70, 1),
        ("ç" * 71, "UCS-2", 71, 2),
        ("ç" * 134, "UCS-2", 134, 2),
        ("ç" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),
        ("😀" * 36, "UCS-2", 72, 2),
        ("€" * 69 + "ç", "UCS-2", 70, 1),
    ],
)
def test_sms_character_and_fragment_counts(content: str, encoding: str, characters: int, fragments: int) -> None:
    rendered = render_sms(content, {})
    assert rendered.body == content
    assert (rendered.encoding, rendered.character_count, rendered.fragment_count) == (encoding, characters, fragments)
