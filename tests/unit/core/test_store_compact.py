"""Objects entering the cache share their keys and short strings (memory), and stay equal."""

from __future__ import annotations

import json

from controller.core.store import INTERN_MAX, compact

DOC = json.dumps(
    {
        "metadata": {"name": "a", "labels": {"app.kubernetes.io/managed-by": "mcp-operator"}},
        "spec": {"containers": [{"name": "mcp", "terminationMessagePolicy": "File"}], "long": "x" * 200},
    }
)


def test_compact_keeps_the_value_and_shares_keys_and_short_strings_across_objects() -> None:
    first, second = compact(json.loads(DOC)), compact(json.loads(DOC))
    assert first == json.loads(DOC)
    key_a = next(k for k in first["spec"]["containers"][0] if k == "terminationMessagePolicy")
    key_b = next(k for k in second["spec"]["containers"][0] if k == "terminationMessagePolicy")
    assert key_a is key_b
    labels_a, labels_b = first["metadata"]["labels"], second["metadata"]["labels"]
    assert labels_a["app.kubernetes.io/managed-by"] is labels_b["app.kubernetes.io/managed-by"]
    assert len(first["spec"]["long"]) > INTERN_MAX  # long strings are left alone
