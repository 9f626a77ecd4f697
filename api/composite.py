"""Composite tools: a tool of the gateway that runs a workflow of steps over backend tools.

One model serves the three places a composite tool is written: a ``VirtualMCPCompositeToolDefinition``'s
spec, a VirtualMCPServer's inline ``spec.config.compositeTools`` and the gateway's config file
(``compositeTools``, where the operator renders both). Field names are ToolHive's (``CompositeToolConfig``,
``WorkflowStepConfig``, ``StepErrorHandling``, ``OutputConfig``), plus two it documents and its examples
use: the workflow's ``failureMode`` (the steps' default ``onError.action``) and ``onError.maxRetries``
(``retryCount`` by another name). What the schema cannot say is checked by
:func:`api.composite_rules.composite_tool_problems`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from api.base import CRDModel
from api.common import ToolAnnotationsOverride

__all__ = [
    "DEFAULT_STEP_TIMEOUT",
    "DEFAULT_WORKFLOW_TIMEOUT",
    "CompositeToolConfig",
    "CompositeToolRef",
    "ElicitationResponseConfig",
    "OutputConfig",
    "OutputProperty",
    "StepErrorHandling",
    "WorkflowStepConfig",
]

DEFAULT_WORKFLOW_TIMEOUT = "30m"
"""ToolHive's default of a workflow's ``timeout``."""
DEFAULT_STEP_TIMEOUT = "5m"
"""ToolHive's default of a step's ``timeout``."""

#: Any JSON object, kept as written (the API server prunes nothing inside it).
FreeObject = Annotated[
    dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
]
#: Any JSON value (object, list, string, number or boolean), kept as written.
AnyJSON = Annotated[Any, WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True})]


class StepErrorHandling(CRDModel):
    """What a step does when its tool fails (an error, ``isError: true``, or a timeout)."""

    action: Literal["abort", "continue", "retry"] | None = None
    """``abort`` ends the workflow with an error naming the step; ``continue`` goes on (the step's
    output is its ``defaultResults``); ``retry`` calls the tool again up to ``retryCount`` times, then
    aborts. Unset: the workflow's ``failureMode`` (``abort`` by default)."""
    retry_count: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int32"})
    """With ``retry``: how many more attempts after the first (at least 1, at most 10)."""
    max_retries: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int32"})
    """Another name of ``retryCount`` (ToolHive's documentation and examples use it)."""
    retry_delay: str | None = None
    """With ``retry``: the delay before the first retry, doubled at each further one (default ``1s``),
    e.g. ``500ms``."""


class ElicitationResponseConfig(CRDModel):
    """What an elicitation step does when the user declines or cancels (or does not answer in time)."""

    action: Literal["skip_remaining", "abort", "continue"] | None = None
    """``abort`` (default) fails the step, ``continue`` goes on (output ``{action}``), ``skip_remaining``
    ends the workflow successfully without running the steps not started yet."""


class OutputProperty(CRDModel):
    """One property of the composite tool's structured result."""

    type: Literal["string", "integer", "number", "boolean", "object", "array"]
    """The JSON Schema type; the expanded ``value`` is converted to it."""
    description: str | None = None
    """Shown to clients in the tool's ``outputSchema``."""
    value: str | None = None
    """A template giving the value, e.g. ``{{.steps.fetch.output.text}}``; for ``object`` and
    ``array`` it must expand to JSON (use ``json``)."""
    properties: Annotated[
        dict[str, OutputProperty] | None,
        WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    ] = None
    """For ``object`` without ``value``: its properties, each an OutputProperty."""
    default: AnyJSON = None
    """The value used when ``value`` cannot be expanded or converted."""


class OutputConfig(CRDModel):
    """The composite tool's structured result (by default it returns its last step's output)."""

    properties: dict[str, OutputProperty]
    """Property name -> how it is computed."""
    required: list[str] | None = None
    """Properties that must have a value, else the call fails."""


class WorkflowStepConfig(CRDModel):
    """One step: a call of a backend tool."""

    id: str = Field(min_length=1)
    """Unique within the workflow; templates read its result as ``.steps.<id>``."""
    type: Literal["tool", "elicitation", "forEach"] = "tool"
    """``tool`` calls a backend tool; ``elicitation`` asks the client's user (``message``, ``schema``),
    only for a 2025-11-25 client that declared the elicitation capability; ``forEach`` calls ``step``'s
    tool once per item of ``collection``."""
    tool: str | None = None
    """The backend tool: ``<backend>.<tool>`` (the member's name and the tool's own name), or the name
    clients see in the gateway's ``tools/list``."""
    arguments: FreeObject | None = None
    """Arguments of the call. String values are templates (``{{.params.url}}``); the expanded text is
    converted to the tool's declared type (integer, number, boolean, object, array)."""
    condition: str | None = None
    """A template that must expand to ``true`` for the step to run; otherwise the step is skipped and
    its output is ``defaultResults``."""
    depends_on: list[str] | None = None
    """Steps that must finish first. Steps without a dependency between them run in parallel."""
    on_error: StepErrorHandling | None = None
    """What to do when the tool fails."""
    timeout: str | None = None
    """Deadline of the step, e.g. ``30s`` (default ``5m``)."""
    default_results: FreeObject | None = None
    """The step's output when it is skipped or fails under ``continue`` (e.g. ``{text: "n/a"}``)."""
    message: str | None = None
    """Elicitation: the question (a template)."""
    schema_: FreeObject | None = Field(default=None, alias="schema")
    """Elicitation: the answer's JSON Schema (an object of primitive properties); the answer is the step's
    ``output.content`` (and ``output.action`` is ``accept``)."""
    on_decline: ElicitationResponseConfig | None = None
    """Elicitation: what happens when the user declines (default ``abort``)."""
    on_cancel: ElicitationResponseConfig | None = None
    """Elicitation: what happens when the user cancels or the step's ``timeout`` passes (default
    ``abort``)."""
    collection: str | None = None
    """forEach: a template expanding to a JSON array, e.g. ``{{json .steps.list.output.items}}``."""
    item_var: str | None = None
    """forEach: the item's name in the inner step's templates, ``.forEach.<itemVar>`` (default ``item``;
    ``.forEach.index`` is its position)."""
    max_parallel: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    """forEach: items called at once (default 10, at most 50)."""
    max_iterations: int | None = Field(default=None, json_schema_extra={"format": "int32"})
    """forEach: the most items accepted (default 100, at most 1000)."""
    step: FreeObject | None = None
    """forEach: the step run per item, ``{tool, arguments}``."""


class CompositeToolConfig(CRDModel):
    """A composite tool: clients see one tool; calling it runs ``steps``."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$")
    """The tool's name in the gateway's ``tools/list``."""
    description: str = Field(min_length=1)
    """The tool's description."""
    parameters: FreeObject | None = None
    """The tool's input, a JSON Schema with ``type: object`` (its ``inputSchema``); templates read the
    arguments as ``.params.<name>``; ``default`` values apply to absent arguments."""
    timeout: str | None = None
    """Deadline of the whole workflow, e.g. ``2m`` (default ``30m``)."""
    failure_mode: Literal["abort", "continue"] | None = None
    """The steps' default ``onError.action`` (default ``abort``)."""
    steps: list[WorkflowStepConfig] = Field(min_length=1)
    """The steps, run as a graph by ``dependsOn`` (independent steps in parallel)."""
    output: OutputConfig | None = None
    """The structured result; unset, the tool returns the output of the step that finished last."""
    annotations: ToolAnnotationsOverride | None = None
    """Hints for clients, over those derived from the steps' tools (an explicit hint may not make the
    tool look safer than its steps: it is then left out of ``tools/list``)."""


class CompositeToolRef(CRDModel):
    """A VirtualMCPCompositeToolDefinition in the VirtualMCPServer's namespace."""

    name: str = Field(min_length=1)
    """Its name."""
