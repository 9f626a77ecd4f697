"""The base of the data plane's config-file models (camelCase keys, Python names too, nothing unknown)."""

from __future__ import annotations

from pydantic import AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["ConfigFileModel"]


class ConfigFileModel(BaseModel):
    """Frozen; camelCase in files (both spellings read); an unknown key is an error, never dropped."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )
