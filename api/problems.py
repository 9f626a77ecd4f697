"""``Problem``: one thing wrong with a spec, with the JSON path of the field and a message saying the fix."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

__all__ = ["Problem", "format_problems", "problems_from_validation_error"]


@dataclass(frozen=True, order=True)
class Problem:
    """A spec problem. ``field`` is a JSON path such as ``spec.secrets[0].targetEnvName``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def format_problems(problems: list[Problem]) -> str:
    """One line per problem, for a condition message or an Event."""
    return "; ".join(str(p) for p in problems)


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
