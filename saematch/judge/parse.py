"""Read a label (1 DIFFERENT, 2 MAYBE, 3 SAME) out of a judge's free-text answer.

Rules, first match wins (markdown characters `*`, `_`, `#`, backquote, `>` are removed first):
1. an explicit marker — `label`, `score`, `rating`, `answer` or `verdict`,
   then optional `:`/`=`/`is`, then 1-3 or SAME/MAYBE/DIFFERENT (any case); the LAST such
   marker in the text counts (models restate their final answer last);
2. the whole answer is a bare label: `3`, `(3)`, `3.`, `SAME`, `same.`;
3. the first or the last non-empty line starts with a lone digit 1-3 (e.g. `3 - comparable`);
   when both do and disagree, no label;
4. the upper-case words SAME / MAYBE / DIFFERENT as whole words: exactly one distinct one
   present gives it; several distinct ones give no label.
Anything else is unparseable: None (never guessed).
"""

from __future__ import annotations

import re

from saematch.judge.prompt import DIFFERENT, MAYBE, SAME

WORDS = {"DIFFERENT": DIFFERENT, "MAYBE": MAYBE, "SAME": SAME}
_TOKEN = r"([123]|same|maybe|different)(?![\w.]*\d)"
_MARKER = re.compile(
    r"\b(?:label|score|rating|answer|verdict)\s*(?:[:=]|\bis\b)?\s*[(\[\"']?\s*" + _TOKEN + r"\b",
    re.IGNORECASE,
)
_BARE = re.compile(r"^[(\[\"']?\s*" + _TOKEN + r"\s*[)\]\"']?\s*[.!]?$", re.IGNORECASE)
_LINE_DIGIT = re.compile(r"^[(\[]?([123])(?![\d.,]\d)(?:[)\].:\-\s/]|$)")
_UPPER = re.compile(r"\b(SAME|MAYBE|DIFFERENT)\b")


def _value(token: str) -> int:
    return int(token) if token.isdigit() else WORDS[token.upper()]


def parse_label(text: str | None) -> int | None:
    """The judge's label in `text` (1, 2 or 3), or None if it cannot be read unambiguously."""
    if not text:
        return None
    clean = re.sub(r"[*_#`>]+", " ", text)
    markers = _MARKER.findall(clean)
    if markers:
        return _value(markers[-1])
    bare = _BARE.match(clean.strip())
    if bare:
        return _value(bare.group(1))
    lines = [ln.strip() for ln in clean.splitlines() if ln.strip()]
    if lines:
        ends = {m.group(1) for ln in (lines[0], lines[-1]) if (m := _LINE_DIGIT.match(ln))}
        if len(ends) == 1:
            return int(ends.pop())
        if len(ends) > 1:
            return None
    words = set(_UPPER.findall(text))
    if len(words) == 1:
        return WORDS[words.pop()]
    return None
