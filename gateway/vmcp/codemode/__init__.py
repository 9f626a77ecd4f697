"""Code mode (ToolHive's ``codeMode``): the gateway's ``execute_tool_script`` tool runs a Starlark script
that calls the gateway's tools as functions (docs/vmcp.md, "Code mode").

- :mod:`.script`: the pure parts (the tool's description and input schema, how a script is wrapped, how
  tool results become script values and the script's value becomes the tool result, error messages).
- :mod:`.worker`: the interpreter, run in a child process of its own per script (starlark-pyo3).
- :mod:`.runner`: the gateway's side of one script: the child process, its inner tool calls, its limits.
- :mod:`.hooks`: the tool in the gateway's ``tools/list`` and ``tools/call`` handlers, and its metrics.

This package's ``__init__`` imports nothing, so the child process loads only the interpreter's modules.
"""
