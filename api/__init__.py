"""The API of mcp-operator: typed models of the CRDs, their generation, and spec validation.

Group ``mcp-operator.dev``, version ``v1beta1`` (``v1alpha1`` is still served with the same schema). Modules:

- ``api.mcpserver``, ``api.mcpremoteproxy``, ``api.virtualmcpserver``, ``api.mcpgroup``,
  ``api.mcptoolconfig``, ``api.mcpexternalauthconfig``: one kind each (spec, status, object model);
- ``api.common`` (shared embedded types), ``api.conditions`` (the metav1.Condition shape),
  ``api.base`` (the base model, group and version);
- ``api.registry``: names, short names and printer columns of every kind;
- ``api.schema`` / ``api.crds`` / ``api.docs``: structural CRDs and ``docs/api.md`` from the models;
- ``api.validation``: ``validate(obj) -> list[Problem]`` for what a schema cannot express.
- ``api.reserved``: ToolHive fields not implemented yet, declared in the schema and refused when set.

``api.auth_config``, ``api.proxy_config`` and ``api.vmcp_config`` hold the data plane's config files.
Nothing is imported here, so the data plane loads only the modules it uses.
"""
