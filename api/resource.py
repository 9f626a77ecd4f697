"""The top-level object shape of every kind: apiVersion, kind, metadata, spec and status."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import Field

from api.base import GROUP_VERSION, CRDModel, ObjectMeta

__all__ = ["CustomResource"]


class CustomResource(CRDModel):
    """Base of the six kinds. Subclasses declare ``kind`` (a Literal) and their own ``spec`` / ``status``."""

    KIND: ClassVar[str]

    api_version: str = Field(default=GROUP_VERSION, alias="apiVersion")
    """``mcp-operator.dev/v1beta1`` (objects written as ``v1alpha1`` are read as ``v1beta1`` too)."""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse an object as returned by the API server (raises pydantic ``ValidationError``)."""
        return cls.model_validate(data)
