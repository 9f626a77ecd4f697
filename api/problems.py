"""``Problem``: one thing wrong with a spec, with the JSON path of the field and a message saying the fix."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

__all__ = ["MAX_MESSAGE", "Problem", "format_problems", "problems_from_validation_error"]


@dataclass(frozen=True, order=True)
class Problem:
    """A spec problem. ``field`` is a JSON path such as ``spec.secrets[0].targetEnvName``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


#: metav1.Condition's message limit: a longer message would make the status write itself fail.
MAX_MESSAGE = 32768


def format_problems(problems: list[Problem], limit: int = MAX_MESSAGE) -> str:
    """The problems joined by ``; ``, for a condition message or an Event; at most ``limit`` characters
    (the problems that do not fit are counted, so a spec with thousands of problems still gets a status)."""
    texts = [str(p) for p in problems]
    text = "; ".join(texts)
    if len(text) <= limit:
        return text
    room = limit - len(f"; ... and {len(texts)} more problems")
    kept = 0
    used = len(texts[0])
    while kept < len(texts) and used <= room:
        kept += 1
        used += 2 + len(texts[kept]) if kept < len(texts) else 0
    more = f"... and {len(texts) - kept} more problems"
    if kept == 0:
        return f"{texts[0][: limit - len(more) - 2]}; {more}"
    return "; ".join([*texts[:kept], more])


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = part
    return out or "(object)"


def problems_from_validation_error(error: ValidationError, prefix: str = "") -> list[Problem]:
    """The pydantic errors of an object that does not even parse, as Problems with JSON paths.

    ``prefix`` is prepended to every path (e.g. ``spec`` when only the spec was validated).
    """
    problems = []
    for item in error.errors(include_url=False):
        # Union and model-wrapper errors add a non-field segment such as "function-after[...]".
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and "[" in p))
        path = _path(loc)
        if prefix:
            path = f"{prefix}.{path}" if path != "(object)" else prefix
        message = str(item["msg"])
        if item["type"] == "missing":
            message = "Field required; set it"
        problems.append(Problem(path, message))
    return problems
