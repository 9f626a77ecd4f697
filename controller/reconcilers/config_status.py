"""The status every shared configuration kind writes: ``Accepted`` (the ``Valid`` column),
``observedGeneration`` and, for a valid spec, ``configHash`` (the hash the workloads copy into their own
``...ConfigHash`` fields)."""

from __future__ import annotations

from pydantic import BaseModel

from api.conditions import ACCEPTED
from api.problems import Problem, format_problems
from controller.core import ReconcileContext
from controller.reconcilers.children import JSON, spec_hash
from controller.reconcilers.status import StatusBuilder, accept
from controller.reconcilers.writes import emit


def accepted_status(
    builder: StatusBuilder,
    problems: list[Problem],
    spec: BaseModel | None,
    valid_message: str,
    found: list[Problem] | None = None,
) -> JSON:
    """``Accepted`` (False naming the problems when ``spec`` is None or ``problems`` is not empty; True
    with the notices ``found``, ``api.notices``) and the status fields that go with it."""
    status: JSON = {"observedGeneration": builder.generation}
    if problems or spec is None:
        builder.set(ACCEPTED, False, "InvalidSpec", format_problems(problems))
    else:
        accept(builder, found or [], valid_message)
        status["configHash"] = spec_hash(spec)
    return status


async def write_status(ctx: ReconcileContext, raw: JSON, status: JSON, builder: StatusBuilder) -> None:
    """Apply ``status`` with the builder's conditions and emit its Events."""
    await ctx.applier.apply_status(raw, {**status, "conditions": builder.conditions})
    await emit(ctx, raw, builder.events)
