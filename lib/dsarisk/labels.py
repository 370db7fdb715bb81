"""Matching of level labels written in the many spellings reports use.

"Med. High", "Medium-High", "medium high" and "Low Med" all name a level of a
scale; input accepts any of them and output always uses the scale's own label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ABBREVIATIONS = {"med": "medium", "v": "very", "hi": "high", "lo": "low", "adhoc": "ad hoc"}


def label_key(label: str) -> str:
    """Return the comparison key of a label: lower case, words only, abbreviations spelt out.

    Examples
    --------
    >>> label_key("Med. High") == label_key("Medium-High") == "medium high"
    True
    """
    words = re.split(r"[\s\-_./]+", label.strip().lower())
    return " ".join(_ABBREVIATIONS.get(word, word) for word in words if word)


def canonical_label(label: str, labels: Iterable[str]) -> str | None:
    """Return the member of ``labels`` that ``label`` spells, or None if it names none."""
    wanted = label_key(label)
    for candidate in labels:
        if label_key(candidate) == wanted:
            return candidate
    return None


def version_label(public: bool) -> str:
    """The mark of a report's version, carried by every section."""
    return "Non-confidential version" if public else "Confidential: internal version"
