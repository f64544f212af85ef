"""Pure template rendering: placeholders, conditionals, Markdown email bodies and SMS length maths.

Data in, rendered message out: no I/O, no settings, no clock. This runs once per POST, so the regexes and
the Markdown parser are built once at import. Parsing Markdown costs over ten times as much as filling
placeholders, so the POST path, which returns only the Markdown source, can call `fill_email`; `render_email`
parses each body once and produces both HTML and plain text from the same tokens.

At send time the same template is rendered thousands of times with different values, so `render_email` renders
each template body once with a marker in every placeholder and fills the markers of that cached HTML and text
(`_prerender`). That is only exact when a value cannot change the Markdown around it, so it is used only for
values made of letters and digits joined by single spaces or `. , @ ' ? : / % -` (and starting with a letter
where the placeholder starts a line); any other value, a conditional placeholder or a placeholder inside a link
takes the full path, `render_email_fully`. tests/templates/test_prerender.py checks both agree.
"""

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from markdown_it import MarkdownIt
from markdown_it.token import Token

Personalisation = Mapping[str, object]
SmsEncoding = Literal["GSM-7", "UCS-2"]
_Mode = Literal["subject", "markdown", "html", "sms"]

# Same pattern as GC Notify (notifications_utils.field.Field): non-greedy, and the lookahead makes
# "(((colour)))" the placeholder "colour" wrapped in literal parentheses.
_PLACEHOLDER_RE: Final = re.compile(r"\({2}(?!\()([\s\S]+?)\){2}")
_NAME_NOISE: Final = str.maketrans("", "", " _-\t\n\r\f\v")
# GC Notify's str2bool list, which includes the French words its bilingual services use.
_TRUE_WORDS: Final = frozenset({"yes", "y", "true", "t", "1", "include", "show", "oui", "vrai", "inclure", "afficher"})
_SUBJECT_BREAK_RE: Final = re.compile(r"\s*[\r\n]\s*")
_SMS_NEWLINE_RE: Final = re.compile(r"\r\n?")

# GSM 03.38 default alphabet (without ESC, 0x1B) and the characters reached through ESC, which cost 2.
_GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION: Final = "\f^{}\\[~]|€"
_NON_GSM7_RE: Final = re.compile(f"[^{re.escape(_GSM7_BASIC + _GSM7_EXTENSION)}]")
_SMS_LIMITS: Final[dict[SmsEncoding, tuple[int, int]]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}

# Raw HTML in templates or values is escaped, never passed through; GC turns single newlines into <br>.
_MARKDOWN: Final = MarkdownIt("commonmark", {"html": False, "breaks": True})
_RULE: Final = "-" * 40


class MissingPersonalisationError(ValueError):
    """Personalisation lacks a value for one or more required placeholders."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__(f"Missing personalisation: {', '.join(self.names)}")


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """An email with its personalisation filled in."""

    subject: str
    body: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class RenderedSms:
    """A text message with its personalisation filled in, and what it costs to send."""

    body: str
    encoding: SmsEncoding
    character_count: int
    fragment_count: int


def normalise_placeholder(name: str) -> str:
    """Return the key a placeholder or personalisation name is matched by."""
    return name.translate(_NAME_NOISE).lower()


def placeholders(*texts: str) -> list[str]:
    """List the placeholder names in the texts, once each, in order of first appearance."""
    seen: dict[str, str] = {}
    for text in texts:
        for match in _PLACEHOLDER_RE.finditer(text):
            name = match.group(1).partition("??")[0].strip()
            key = normalise_placeholder(name)
            if key and key not in seen:
                seen[key] = name
    return list(seen.values())


def missing_personalisation(personalisation: Personalisation, *texts: str) -> list[str]:
    """List the required placeholders in the texts that have no value in the personalisation."""
    return _missing(_by_key(personalisation), texts)


def fill_email(subject: str, content: str, personalisation: Personalisation) -> tuple[str, str]:
    """Return the filled subject and Markdown body, without rendering HTML or plain text."""
    return _fill_email(subject, content, _by_key(personalisation))


def render_email(subject: str, content: str, personalisation: Personalisation) -> RenderedEmail:
    """Fill an email template and render its Markdown body to HTML and plain text (from a cached render if exact)."""
    values = _by_key(personalisation)
    filled_subject, body = _fill_email(subject, content, values)
    prerendered = _prerender(content)
    if prerendered is not None and prerendered.fits(values):
        html, text = prerendered.fill(values)
        return RenderedEmail(subject=filled_subject, body=body, html=html, text=text)
    return _render_markdown(content, values, filled_subject, body)


def render_email_fully(subject: str, content: str, personalisation: Personalisation) -> RenderedEmail:
    """Fill an email template and parse and render its filled Markdown body: the general path."""
    values = _by_key(personalisation)
    filled_subject, body = _fill_email(subject, content, values)
    return _render_markdown(content, values, filled_subject, body)


def _render_markdown(content: str, values: Mapping[str, object], filled_subject: str, body: str) -> RenderedEmail:
    # Escaping "&" keeps a value such as "&lt;" literal instead of letting Markdown decode it as an entity.
    source = _fill(content, values, "html") if "&" in body else body
    tokens = _MARKDOWN.parse(source)
    html = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})
    return RenderedEmail(subject=filled_subject, body=body, html=html, text=_plain_text(tokens))


# A marker Markdown treats like a word (private-use characters are neither space nor punctuation).
_SLOT_OPEN: Final = "\ue000"
_SLOT_CLOSE: Final = "\ue001"
_SLOT_RE: Final = re.compile(f"{_SLOT_OPEN}(\\d+){_SLOT_CLOSE}")
# A value that cannot change the Markdown around it: no emphasis, code, link, escape, entity or HTML characters,
# no line break, no leading or trailing space; it starts and ends like a word, as the marker does.
_PLAIN_VALUE_RE: Final = re.compile(r"[^\W_]+(?:[ .,@'?:/%-][^\W_]+)*")


@dataclass(frozen=True, slots=True)
class _Prerendered:
    """A template body rendered once with markers: literal parts around the placeholders' keys."""

    html: tuple[str, ...]
    html_keys: tuple[str, ...]
    text: tuple[str, ...]
    text_keys: tuple[str, ...]
    keys: frozenset[str]
    line_start: frozenset[str]  # keys with a placeholder that starts a line: a digit there could make a list

    def fits(self, values: Mapping[str, object]) -> bool:
        """Return whether filling the markers with these values gives exactly what rendering them would."""
        for key in self.keys:
            value = values.get(key)
            if isinstance(value, list | tuple):
                return False
            text = _scalar(value)
            if _PLAIN_VALUE_RE.fullmatch(text) is None or (key in self.line_start and not text[0].isalpha()):
                return False
        return True

    def fill(self, values: Mapping[str, object]) -> tuple[str, str]:
        """Return the HTML and plain text with every marker replaced by its value."""
        return _join(self.html, self.html_keys, values), _join(self.text, self.text_keys, values)


def _join(parts: tuple[str, ...], keys: tuple[str, ...], values: Mapping[str, object]) -> str:
    out = [parts[0]]
    for key, part in zip(keys, parts[1:], strict=True):
        out.append(_scalar(values.get(key)))
        out.append(part)
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _prerender(content: str) -> _Prerendered | None:
    """Render a template body with a marker per placeholder, or None when markers cannot stand in for values."""
    parsed = _parsed(content)
    if _SLOT_OPEN in content or _SLOT_CLOSE in content or any(slot.conditional for slot in parsed.slots):
        return None  # a conditional placeholder's text, not a value, goes in its place
    slots = [slot.key for slot in parsed.slots]
    parts = [parsed.literals[0]]
    for index, literal in enumerate(parsed.literals[1:]):
        parts += [f"{_SLOT_OPEN}{index}{_SLOT_CLOSE}", literal]
    line_start = {slot.key for slot in parsed.slots if not content[: slot.start].rpartition("\n")[2].strip()}
    tokens = _MARKDOWN.parse("".join(parts))
    if _marker_in_link(tokens):
        return None  # plain text leaves out a link's target when it equals its text: that depends on the value
    html = _split(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}), slots)
    text = _split(_plain_text(tokens), slots)
    if html is None or text is None:
        return None
    return _Prerendered(html[0], html[1], text[0], text[1], frozenset(slots), frozenset(line_start))


def _marker_in_link(tokens: Sequence[Token]) -> bool:
    for token in tokens:
        depth = 0
        for child in token.children or ():
            if child.type == "link_open":
                depth += 1
            elif child.type == "link_close":
                depth -= 1
            elif depth and _SLOT_OPEN in child.content:
                return True
    return False


def _split(rendered: str, slots: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Cut rendered output at its markers; None unless every marker survived exactly once, unchanged."""
    pieces = _SLOT_RE.split(rendered)
    indexes = [int(index) for index in pieces[1::2]]
    if sorted(indexes) != list(range(len(slots))) or _SLOT_OPEN in rendered.replace(_SLOT_OPEN, "", len(indexes)):
        return None
    return tuple(pieces[0::2]), tuple(slots[index] for index in indexes)


def render_sms(content: str, personalisation: Personalisation, prefix: str | None = None) -> RenderedSms:
    """Fill an SMS template, add the sender prefix and count its characters and fragments."""
    values = _by_key(personalisation)
    missing = _missing(values, (content,))
    if missing:
        raise MissingPersonalisationError(missing)
    body = _fill(_SMS_NEWLINE_RE.sub("\n", content), values, "sms").strip()
    if prefix:
        body = f"{prefix}: {body}"
    encoding = sms_encoding(body)
    if encoding == "GSM-7":
        count = len(body) + sum(map(body.count, _GSM7_EXTENSION))
    else:
        # Characters outside the Basic Multilingual Plane (most emoji) take two UTF-16 code units.
        count = len(body.encode("utf-16-le")) // 2
    single, part = _SMS_LIMITS[encoding]
    fragments = 1 if count <= single else math.ceil(count / part)
    return RenderedSms(body=body, encoding=encoding, character_count=count, fragment_count=fragments)


def sms_encoding(text: str) -> SmsEncoding:
    """Return the encoding a text message needs: GSM-7 when every character is in GSM 03.38, else UCS-2."""
    return "UCS-2" if _NON_GSM7_RE.search(text) else "GSM-7"


def _by_key(personalisation: Personalisation) -> dict[str, object]:
    return {normalise_placeholder(key): value for key, value in personalisation.items()}


def _fill_email(subject: str, content: str, values: Mapping[str, object]) -> tuple[str, str]:
    missing = _missing(values, (subject, content))
    if missing:
        raise MissingPersonalisationError(missing)
    filled_subject = _SUBJECT_BREAK_RE.sub(" ", _fill(subject, values, "subject")).strip()
    return filled_subject, _fill(content, values, "markdown")


def _missing(values: Mapping[str, object], texts: Sequence[str]) -> list[str]:
    names: dict[str, str] = {}
    required: set[str] = set()
    for text in texts:
        for slot in _parsed(text).slots:
            names.setdefault(slot.key, slot.name)
            if not slot.conditional:
                required.add(slot.key)
    return [name for key, name in names.items() if key in required and values.get(key) is None]


@dataclass(frozen=True, slots=True)
class _Slot:
    """One placeholder of a text: its key and name, its `??` text if conditional, and where it stands."""

    key: str
    name: str
    conditional: bool
    conditional_text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A text cut at its placeholders: `literals[i]` comes before `slots[i]`, and the last literal after them all."""

    literals: tuple[str, ...]
    slots: tuple[_Slot, ...]


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> _Parsed:
    """Find a text's placeholders once: every message of a template (a whole bulk job) reuses the result."""
    literals: list[str] = []
    slots: list[_Slot] = []
    position = 0
    for match in _PLACEHOLDER_RE.finditer(text):
        name, conditional, conditional_text = match.group(1).partition("??")
        key = normalise_placeholder(name)
        if not key:
            continue  # "(( ))" is not a placeholder: it stays in the literal text
        literals.append(text[position : match.start()])
        slots.append(_Slot(key, name.strip(), bool(conditional), conditional_text, match.start(), match.end()))
        position = match.end()
    literals.append(text[position:])
    return _Parsed(tuple(literals), tuple(slots))


def _fill(text: str, values: Mapping[str, object], mode: _Mode) -> str:
    parsed = _parsed(text)
    if not parsed.slots:
        return text
    parts = [parsed.literals[0]]
    for slot, literal in zip(parsed.slots, parsed.literals[1:], strict=True):
        value = values.get(slot.key)
        if slot.conditional:
            parts.append(slot.conditional_text if _is_true(value) else "")
        else:
            parts.append(_format_value(value, mode, text, slot.start, slot.end))
        parts.append(literal)
    return "".join(parts)


def _is_true(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    if isinstance(value, list | tuple):
        return any(_is_true(item) for item in value)
    return False


def _scalar(value: object) -> str:
    return "" if value is None else str(value)


def _format_value(value: object, mode: _Mode, text: str, start: int, end: int) -> str:
    if not isinstance(value, list | tuple):
        rendered = _scalar(value)
        return rendered.replace("&", "&amp;") if mode == "html" else rendered
    items = [item for item in map(_scalar, value) if item.strip()]
    if mode == "subject":
        return ", ".join(items)
    if mode == "sms":
        return _as_block(text, start, end, "\n".join(f"• {item}" for item in items), 1)
    lines = "\n".join(f"* {item}" for item in items)
    return _as_block(text, start, end, lines.replace("&", "&amp;") if mode == "html" else lines, 2)


def _as_block(text: str, start: int, end: int, block: str, newlines: int) -> str:
    """Put a list on its own lines, `newlines` apart from the text around the placeholder."""
    if not block:
        return ""
    before = _newlines_next_to(text, start - 1, -1)
    after = _newlines_next_to(text, end, 1)
    lead = "" if before is None else "\n" * max(0, newlines - before)
    trail = "" if after is None else "\n" * max(0, newlines - after)
    return f"{lead}{block}{trail}"


def _newlines_next_to(text: str, index: int, step: int) -> int | None:
    """Count the newlines between index and the nearest visible character; None if there is none."""
    count = 0
    while 0 <= index < len(text):
        char = text[index]
        if char == "\n":
            count += 1
        elif char not in " \t\r":
            return count
        index += step
    return None


@dataclass(slots=True)
class _ListLevel:
    ordered: bool
    number: int
    lead: str
    marker: str = ""
    started: bool = False

    def open_item(self) -> None:
        self.marker = f"{self.number}. " if self.ordered else "• "
        self.number += 1
        self.started = False

    @property
    def hang(self) -> str:
        return self.lead + " " * len(self.marker)

    def format(self, block: str) -> str:
        first = self.hang if self.started else self.lead + self.marker
        self.started = True
        return first + block.replace("\n", "\n" + self.hang)


def _plain_text(tokens: Sequence[Token]) -> str:
    """Render parsed Markdown as readable plain text for the text/plain part of an email."""
    blocks: list[tuple[str, bool]] = []
    levels: list[_ListLevel] = []
    for token in tokens:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            lead = levels[-1].hang if levels else ""
            start = token.attrGet("start")
            levels.append(_ListLevel(kind == "ordered_list_open", int(start or 1), lead))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            levels.pop()
        elif kind == "list_item_open":
            levels[-1].open_item()
        elif kind in ("inline", "fence", "code_block", "hr"):
            block = _block_text(token)
            if levels:
                blocks.append((levels[-1].format(block), True))
            elif block:
                blocks.append((block, False))
    parts: list[str] = []
    previous_in_list = False
    for block, in_list in blocks:
        if parts:
            parts.append("\n" if in_list and previous_in_list else "\n\n")
        parts.append(block)
        previous_in_list = in_list
    return "".join(parts)


def _block_text(token: Token) -> str:
    if token.type == "inline":
        return _inline_text(token.children or [])
    if token.type == "hr":
        return _RULE
    return token.content.rstrip("\n")


def _inline_text(children: Sequence[Token]) -> str:
    parts: list[str] = []
    links: list[tuple[int, str]] = []
    for child in children:
        kind = child.type
        if kind in ("text", "code_inline", "image"):
            parts.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif kind == "link_open":
            links.append((len(parts), str(child.attrGet("href") or "")))
        elif kind == "link_close" and links:
            start, href = links.pop()
            parts.append(_link_suffix("".join(parts[start:]), href))
    return "".join(parts)


def _link_suffix(label: str, href: str) -> str:
    """Say where a link goes, unless its text already does (autolinks, bare email addresses)."""
    if not href or href in (label, f"mailto:{label}"):
        return ""
    return f": {href}" if label.strip() else href
