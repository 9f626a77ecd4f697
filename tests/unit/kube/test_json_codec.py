"""The client's JSON codec (orjson): compact UTF-8 bodies, objects only, order-independent hashes."""

from __future__ import annotations

import pytest

from controller.core.apply import body_hash
from kube.transport import decode_json, encode_json


def test_bodies_are_compact_utf8_without_escapes() -> None:
    # The API server reads apply bodies as YAML, which refuses \ud83d-style surrogate escapes.
    body = {"env": [{"name": "GREETING", "value": "hi \U0001f600 é"}]}
    assert encode_json(body) == '{"env":[{"name":"GREETING","value":"hi \U0001f600 é"}]}'.encode()
    assert decode_json(encode_json(body)) == body


def test_decode_wants_an_object() -> None:
    assert decode_json(b"  \n") == {}
    with pytest.raises(ValueError, match="expected a JSON object"):
        decode_json(b"[1, 2]")
    with pytest.raises(ValueError):
        decode_json(b'{"truncated": ')


def test_body_hash_ignores_key_order_only() -> None:
    assert body_hash({"a": 1, "b": {"c": [1, 2], "d": "x"}}) == body_hash(
        {"b": {"d": "x", "c": [1, 2]}, "a": 1}
    )
    assert body_hash({"a": [1, 2]}) != body_hash({"a": [2, 1]})
