"""Python's ``$`` also matches before a final newline: every pattern check must refuse ``"...\\n"``.

Found by the property test of ``prefixFormat`` (``"\\n"`` was accepted, then made tool names with a
newline). The API server's own CRD patterns are RE2, where ``$`` is the end of the text; these are the
checks the operator and the data plane run themselves.
"""

from __future__ import annotations

import pytest

from api.checks import header_name_problem, parse_quantity
from api.vmcp_config import validate_prefix_format
from controller.reconcilers.children import child_name, label_value


@pytest.mark.parametrize("fmt", ["\n", "{workload}_\n", "team\n"])
def test_a_prefix_format_with_a_trailing_newline_is_refused(fmt: str) -> None:
    with pytest.raises(ValueError, match="not allowed in MCP tool names"):
        validate_prefix_format(fmt)


def test_a_header_name_with_a_trailing_newline_is_refused() -> None:
    assert header_name_problem("X-Api-Key", "spec.x") is None
    problem = header_name_problem("X-Api-Key\n", "spec.x")
    assert problem is not None and "not a valid HTTP header name" in problem.message


def test_a_quantity_with_a_trailing_newline_is_malformed() -> None:
    assert parse_quantity("500m") is not None
    assert parse_quantity("500m\n") is None


def test_child_names_and_label_values_never_keep_a_newline() -> None:
    assert child_name("fetch") == "fetch"
    assert "\n" not in child_name("fetch\n")
    assert label_value("v1") == "v1"
    assert "\n" not in label_value("v1\n")
