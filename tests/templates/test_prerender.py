"""`render_email` fills a cached render of the template when that is exact, and must always agree with the full path."""

from __future__ import annotations

import itertools
import random

import pytest

from notify.templates import rendering

TEMPLATES = [
    "Hi ((name)),\n\nYour code is ((code)).",
    "((name)), your code is ((code))",
    "# Hello ((name))\n\nSee **((code))** and _((name))_ and `((code))`.",
    "* first ((name))\n* second ((code))\n\n1. one ((name))\n2. two",
    "((code)). item\n\n((code)) ((name))",
    "> quoted ((name))\n\n---\n\n    indented ((code))",
    "[link ((name))](https://example.com/a)\n\n[((name))](((code)))\n\n![alt ((name))](https://e.com/((code)).png)",
    "Dear ((name??Yes please)) ((name))\n\nsnake_((name))_case **((name))**x",
    "Fish & chips for ((name)) <b>not html</b> &amp; ((code))",
    "((name))\n===\n\n((code))\n---",
    "Line one ((name))  \nline two\\\n((code))",
    "No placeholders at all, *just* text.",
    "Empty (( )) and (((name))) and ((Name_With-Noise))",
    "```\n((name)) in a fence & ((code))\n```\n\nafter",
    "((name)) ((name)) ((name))",
]

VALUES: list[object] = [
    "Ada",
    "Ada Lovelace",
    "123456",
    "1",
    "ada.lovelace@example.com",
    "example.com",
    "it's 50% off: now/later - ok?",
    "O'Brien",
    "Zoë Ångström",
    "*bold*",
    "_under_",
    "a_b",
    "a & b",
    "&lt;",
    "<script>",
    "two\nlines",
    " padded ",
    "trailing ",
    "",
    "# heading",
    "- item",
    "1. item",
    "`code`",
    "[x](y)",
    "back\\slash",
    "https://example.com/path",
    42,
    3.5,
    True,
    ["one", "two"],
    None,
]


def _personalisation(template: str, name: object, code: object) -> dict[str, object]:
    values: dict[str, object] = {"name": name, "code": code, "Name_With-Noise": name}
    return {key: value for key, value in values.items() if value is not None or "((" + key in template}


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_cached_render_equals_the_full_render(template: str) -> None:
    for name, code in itertools.product(VALUES, repeat=2):
        personalisation = _personalisation(template, name, code)
        try:
            expected = rendering.render_email_fully("Subject ((name))", template, personalisation)
        except rendering.MissingPersonalisationError:
            with pytest.raises(rendering.MissingPersonalisationError):
                rendering.render_email("Subject ((name))", template, personalisation)
            continue
        actual = rendering.render_email("Subject ((name))", template, personalisation)
        assert actual == expected, (template, name, code)


def test_random_documents_agree() -> None:
    pieces = [
        "((name))",
        "((code))",
        "*",
        "**",
        "_",
        "`",
        "\n",
        "\n\n",
        " ",
        "1.",
        "- ",
        "# ",
        "[",
        "](",
        ")",
        "x",
        ".",
        "&",
    ]
    rng = random.Random(8)
    for _ in range(400):
        template = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        for name, code in [("Ada", "123"), ("Ada Lovelace", "7"), ("1", "x.y@z.com"), ("a_b", "*")]:
            personalisation = {"name": name, "code": code}
            expected = rendering.render_email_fully("s", template, personalisation)
            assert rendering.render_email("s", template, personalisation) == expected, (template, name, code)


def test_common_templates_use_the_cached_render() -> None:
    prerendered = rendering._prerender("Hi ((name)),\n\nYour code is **((code))**.")
    assert prerendered is not None
    assert prerendered.fits({"name": "Ada Lovelace", "code": "123456"})
    assert not prerendered.fits({"name": "*Ada*", "code": "123456"}), "Markdown in a value takes the full path"
    assert rendering._prerender("[((name))](https://example.com)") is None, "a value in a link's text"
    assert rendering._prerender("((name??shown))") is None, "a conditional placeholder"
