"""The base model of every CRD type: camelCase JSON names, snake_case attributes, docstrings as docs.

Field docstrings become the ``description`` of the generated OpenAPI schema (``kubectl explain``) and of
``docs/api.md``, so they are written for users of the CRDs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "GROUP_VERSION",
    "OLDER_VERSIONS",
    "CRDModel",
    "ObjectMeta",
    "Port",
    "Quantity",
    "ResourceName",
]

API_GROUP = "mcp-operator.dev"
API_VERSION = "v1beta1"
"""The storage version, and the one the operator reads and writes."""
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"
OLDER_VERSIONS = ("v1alpha1",)
"""Still served, with the same schema: the API server converts between them by changing ``apiVersion``
only (no conversion webhook), so objects written as ``v1alpha1`` are read and reconciled as ``v1beta1``."""

#: A TCP port number.
Port = Annotated[int, Field(ge=1, le=65535, json_schema_extra={"format": "int32"})]
#: A Kubernetes resource quantity such as ``500m``, ``1Gi`` or ``2``.
Quantity = Annotated[str, Field(pattern=r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")]
#: The name of an object in the same namespace (DNS-1123 subdomain).
ResourceName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]


class CRDModel(BaseModel):
    """Common configuration: camelCase aliases, Python names accepted too, unknown keys ignored.

    Unknown keys are ignored (not rejected) because the API server prunes them anyway and an older
    operator must keep reading objects written against a newer CRD.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        validate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=True,
    )

    def to_json(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, unset optional fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectMeta(CRDModel):
    """The subset of Kubernetes ``metadata`` the operator reads."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    """Name of the object, unique in its namespace."""
    namespace: str | None = None
    """Namespace of the object."""
    uid: str | None = None
    """Unique id assigned by the API server."""
    generation: int | None = None
    """Sequence number of the desired state, incremented by the API server on spec changes."""
    resource_version: str | None = None
    """Opaque version of the stored object."""
    creation_timestamp: str | None = None
    """RFC 3339 time the object was created."""
    deletion_timestamp: str | None = None
    """RFC 3339 time after which the object is deleted; set when deletion was requested."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels of the object."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations of the object."""
    finalizers: list[str] = Field(default_factory=list)
    """Finalizers that must be removed before the object is deleted."""
    owner_references: list[dict[str, Any]] = Field(default_factory=list)
    """Owners of the object."""
