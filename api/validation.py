"""``validate``: the spec problems of an object of any kind, and parsing that reports problems too.

Typical use in a reconciler::

    obj, problems = parse_and_validate(raw)   # raw: the dict from the cache
    if problems: set Accepted=False with format_problems(problems) and stop until the spec changes
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from api.problems import Problem, format_problems, problems_from_validation_error
from api.registry import KINDS, kind_info
from api.reserved import reserved_problems
from api.resource import CustomResource

__all__ = ["Problem", "format_problems", "parse_and_validate", "problems_from_validation_error", "validate"]


def validate(obj: CustomResource) -> list[Problem]:
    """Every cross-field problem of ``obj``'s spec, sorted by field; empty when the spec is valid."""
    spec = getattr(obj, "spec", None)  # every kind declares one (CustomResource leaves it to them)
    return sorted(kind_info(obj.KIND).rules(spec))


def parse_and_validate(data: dict[str, Any]) -> tuple[CustomResource | None, list[Problem]]:
    """Parse an object of any registered kind (chosen by ``data["kind"]``) and validate it.

    Returns ``(None, problems)`` when it does not parse (problems name the fields), else
    ``(obj, validate(obj))``. Either way a reserved field it sets (``api.reserved``: a ToolHive field
    not implemented yet) is a problem too, checked on the object as stored, before the model drops it.
    """
    kind = data.get("kind")
    info = KINDS.get(kind) if isinstance(kind, str) else None
    if info is None:
        return None, [Problem("kind", f"{kind!r} is not a kind of this API; use one of {', '.join(KINDS)}")]
    reserved = reserved_problems(data, info.reserved)
    try:
        obj = info.model.model_validate(data)
    except ValidationError as err:
        return None, sorted(reserved + problems_from_validation_error(err))
    return obj, sorted(reserved + validate(obj))
