"""Keyword ranking of tools for the optimizer's ``find_tool``: BM25 over name, description and parameter
names. Pure logic, no I/O, no dependency beyond the standard library.

A tool is one document whose terms come from three fields: its name (counted :data:`NAME_WEIGHT` times,
as a query word found in a name says more than one found in prose), its description, and the names of
its input schema's properties. Words are split on anything that is not a letter or a digit and at
camelCase humps (``listIssues`` -> ``list``, ``issues``; digits stay with the word before them, as
in ``s3``), lower-cased, stripped of a plural or verb ending by :func:`stem` (a few suffix rules,
applied alike to tools and queries) and dropped when they are too common to tell tools apart
(:data:`STOP_WORDS`). The score is Okapi BM25 (``k1`` 1.2, ``b``
0.75) with the non-negative IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from mcp_types import Tool

__all__ = ["NAME_WEIGHT", "STOP_WORDS", "ToolIndex", "stem", "terms"]

NAME_WEIGHT = 2
"""How many times a word of the tool's name counts."""

K1 = 1.2
B = 0.75

_STOP_WORDS_TEXT = (
    "a an and any are as at be by can do does for from get has have how i if in into is it its me my "
    "need of on or some that the then this to tool tools use using want was what when which will "
    "with you your"
)
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
"""Words that say nothing about what a tool does (``get`` included: most tools get something)."""

_WORD = re.compile(r"[A-Z]+(?![a-z])[0-9]*|[A-Z]?[a-z]+[0-9]*|[0-9]+")


def stem(word: str) -> str:
    """``word`` (lower case) without a plural or ``-ing`` / ``-ed`` ending, when enough is left."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "oes")):
        return word[:-2]
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4:
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The search terms of ``text``, in order, repeats kept."""
    words = (w.lower() for w in _WORD.findall(text))
    return [stem(w) for w in words if w not in STOP_WORDS]


def _document(tool: Tool) -> Counter[str]:
    """The term frequencies of one tool (name weighted, description, parameter names)."""
    counts: Counter[str] = Counter()
    for term in terms(tool.name):
        counts[term] += NAME_WEIGHT
    counts.update(terms(tool.description or ""))
    properties = tool.input_schema.get("properties") if isinstance(tool.input_schema, Mapping) else None
    if isinstance(properties, Mapping):
        for parameter in properties:
            counts.update(terms(str(parameter)))
    return counts


@dataclass(frozen=True)
class ToolIndex:
    """The BM25 statistics of one tool list (build once per list with :meth:`build`)."""

    tools: tuple[Tool, ...]
    documents: tuple[Counter[str], ...]
    lengths: tuple[int, ...]
    average_length: float
    document_frequency: Mapping[str, int]

    @classmethod
    def build(cls, tools: Sequence[Tool]) -> ToolIndex:
        documents = tuple(_document(t) for t in tools)
        lengths = tuple(sum(d.values()) for d in documents)
        frequency: Counter[str] = Counter()
        for document in documents:
            frequency.update(document.keys())
        average = sum(lengths) / len(lengths) if lengths else 0.0
        return cls(tuple(tools), documents, lengths, average, dict(frequency))

    def idf(self, term: str) -> float:
        df = self.document_frequency.get(term, 0)
        return math.log(1 + (len(self.tools) - df + 0.5) / (df + 0.5))

    def score(self, position: int, query: Iterable[str]) -> float:
        """The BM25 score of the tool at ``position`` for the query terms (each distinct term once)."""
        document = self.documents[position]
        norm = K1 * (1 - B + B * self.lengths[position] / self.average_length) if self.average_length else K1
        total = 0.0
        for term in set(query):
            tf = document.get(term, 0)
            if tf:
                total += self.idf(term) * tf * (K1 + 1) / (tf + norm)
        return total

    def search(self, query: str, limit: int, allowed: Callable[[Tool], bool] | None = None) -> list[Tool]:
        """At most ``limit`` tools matching a word of ``query``, best first (ties by name); only those
        ``allowed`` accepts when given."""
        wanted = set(terms(query))
        if not wanted or limit < 1:
            return []
        scored: list[tuple[float, str, int]] = []
        for position, tool in enumerate(self.tools):
            if wanted.isdisjoint(self.documents[position]):
                continue
            if allowed is not None and not allowed(tool):
                continue
            scored.append((-self.score(position, wanted), tool.name, position))
        scored.sort()
        return [self.tools[position] for _, _, position in scored[:limit]]
