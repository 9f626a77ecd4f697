"""Properties of derived names, label values, quantities and problem messages, for any input."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from api.checks import parse_quantity
from api.problems import MAX_MESSAGE, Problem, format_problems
from controller.reconcilers.children import MAX_LABEL, MAX_STATEFULSET_NAME, child_name, label_value
from controller.reconcilers.refs import strip_secret_values
from tests.unit.fuzz.strategies import quantity, resource_name

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
suffixes = st.sampled_from(["", "-proxy", "-server", "-vmcp"])
limits = st.sampled_from([MAX_LABEL, MAX_STATEFULSET_NAME])


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(resource_name(), suffixes, limits)
def test_child_names_are_dns_labels_within_the_limit_and_stable(name: str, suffix: str, limit: int) -> None:
    derived = child_name(name, suffix, limit)
    assert DNS_LABEL.match(derived) and len(derived) <= limit, derived
    assert derived.endswith(suffix)
    assert derived == child_name(name, suffix, limit)  # the same on every reconcile
    if len(name + suffix) <= limit and "." not in name:
        assert derived == name + suffix  # names that fit are never touched


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(resource_name(), resource_name(), suffixes)
def test_distinct_names_get_distinct_children(a: str, b: str, suffix: str) -> None:
    if a != b:
        assert child_name(a, suffix) != child_name(b, suffix)


def test_shortened_names_keep_a_readable_prefix() -> None:
    name = "payments-" + "x" * 80 + ".eu-west"
    derived = child_name(name, "-server", MAX_STATEFULSET_NAME)
    assert derived.startswith("payments-xxx") and derived.endswith("-server") and len(derived) == 52
    assert child_name("team.fetch") != "team.fetch" and child_name("team.fetch").startswith("team-fetch-")


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(resource_name() | st.text(max_size=300))
def test_label_values_are_valid_and_stable(value: str) -> None:
    label = label_value(value)
    assert len(label) <= 63 and LABEL_VALUE.match(label), label
    assert label == label_value(value)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(quantity | st.text(max_size=30))
def test_quantities_parse_or_are_refused_never_raise(text: str) -> None:
    parse_quantity(text)  # a Decimal or None; decimal.Overflow on 1e999999999 used to escape


def test_absurd_exponent_is_not_a_quantity() -> None:
    assert parse_quantity("1e999999999") is None and parse_quantity("1e3") == 1000


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.builds(Problem, st.text(min_size=1, max_size=50), st.text(max_size=5000)), min_size=1, max_size=300
    ),
    st.integers(60, MAX_MESSAGE),
)
def test_problem_messages_fit_a_condition_and_count_what_was_cut(problems: list[Problem], limit: int) -> None:
    message = format_problems(problems, limit)
    assert 0 < len(message) <= limit
    full = "; ".join(str(p) for p in problems)
    if len(full) <= limit:
        assert message == full
    else:
        assert re.search(r"\.\.\. and \d+ more problems$", message), message[-80:]


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=100), min_size=1, max_size=10
    ),
    st.sampled_from(["data", "stringData"]),
)
def test_cached_secrets_keep_their_keys_never_their_values(values: dict[str, str], section: str) -> None:
    secret = {
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
        },
        section: dict(values),
    }
    cached = strip_secret_values(secret)
    assert set(cached[section]) == set(values) and set(cached[section].values()) == {""}
    assert "annotations" not in cached["metadata"]  # last-applied-configuration would hold the values
