"""Composite tools: tools of the gateway that run a workflow of steps over backend tools."""

from .tools import StepRouter, call_composite, resolve_step_tool, with_composites
from .workflow import Elicit, StepCall, StepCallError, StepResult, run_workflow

__all__ = [
    "Elicit",
    "StepCall",
    "StepCallError",
    "StepResult",
    "StepRouter",
    "call_composite",
    "resolve_step_tool",
    "run_workflow",
    "with_composites",
]
