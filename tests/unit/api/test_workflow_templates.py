"""The Go-template subset of composite tools: what it renders, and what it refuses when parsed."""

from __future__ import annotations

from typing import Any

import pytest

from api.workflow_templates import TemplateError, parse_template

CONTEXT: dict[str, Any] = {
    "params": {"url": "https://example.com", "n": 3, "flag": True, "empty": ""},
    "steps": {
        "fetch": {
            "status": "completed",
            "output": {"text": '{"user": {"name": "Ada"}, "tags": ["a", "b"]}', "count": 12.0},
            "error": None,
        },
        "lookup": {"status": "failed", "output": {"text": "fallback"}, "error": "boom"},
    },
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain text", "plain text"),
        ("url={{.params.url}}", "url=https://example.com"),
        ("{{ .params.n }}", "3"),
        ("{{.steps.fetch.output.count}}", "12"),  # a JSON 12.0 prints as Go prints float64 12
        ("{{(fromJson .steps.fetch.output.text).user.name}}", "Ada"),
        ("{{index (fromJson .steps.fetch.output.text).tags 1}}", "b"),
        ('{{eq .steps.fetch.status "completed"}}', "true"),
        ('{{ne .steps.lookup.status "completed"}}', "true"),
        ('{{eq .steps.lookup.status "skipped" "failed"}}', "true"),
        ("{{gt .steps.fetch.output.count 10}}", "true"),
        ("{{le .params.n 2}}", "false"),
        ("{{and .params.flag (gt .params.n 1)}}", "true"),
        ("{{or .params.empty .params.url}}", "https://example.com"),
        ("{{not .params.empty}}", "true"),
        ("{{json .params}}", '{"empty":"","flag":true,"n":3,"url":"https://example.com"}'),
        ("{{quote .steps.lookup.error}}", '"boom"'),
        ('{{printf "%s has %d chars" .params.url (len .params.url)}}', "https://example.com has 19 chars"),
        ('{{.params.n | printf "%03d"}}', "003"),
        ("{{.params.missing}}", "<no value>"),
        ("{{.steps.lookup}}", "map[error:boom output:map[text:fallback] status:failed]"),
        ("a {{- .params.n -}} b", "a3b"),
        ("{{/* a comment */}}x", "x"),
        ('{{ "}}" }}', "}}"),
    ],
)
def test_renders_like_go(template: str, expected: str) -> None:
    assert parse_template(template).render(CONTEXT) == expected


def test_references_list_every_field_path_from_the_root() -> None:
    template = parse_template(
        "{{.steps.a.output.x}} {{(fromJson .steps.b.output.text).y}} {{json .params.p}}"
    )
    assert template.references() == [
        ("steps", "a", "output", "x"),
        ("steps", "b", "output", "text"),
        ("params", "p"),
    ]


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{{if .params.flag}}yes{{end}}", "{{if}} is not supported"),
        ("{{range .params}}x{{end}}", "{{range}} is not supported"),
        ("{{with .params}}x{{end}}", "{{with}} is not supported"),
        ("{{$x := 1}}", "variables"),
        ("{{upper .params.url}}", "unknown function 'upper'"),
        ("{{eq .params.n}}", "eq takes at least 2 argument(s), got 1"),
        ("{{.params.url .params.n}}", "a value cannot take arguments"),
        ("{{ .params.url ", "unclosed action"),
        ("{{ (json .params }}", "missing ')'"),
        ("{{eq len .params 2}}", "needs parentheses"),
    ],
)
def test_refuses_what_it_does_not_implement(template: str, says: str) -> None:
    with pytest.raises(TemplateError, match=None) as caught:
        parse_template(template)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{{.params.url.host}}", "is a string, which has no field .host"),
        ("{{.params.missing.x}}", "has no value, so .x cannot be read"),
        ("{{gt .params.url 1}}", "incompatible types for comparison"),
        ("{{fromJson .params.url}}", "fromJson: not valid JSON"),
        ("{{index .steps.fetch.output.text 99}}", "out of range"),
        ('{{printf "%d" .params.url}}', "%d cannot format a string"),
    ],
)
def test_evaluation_errors_say_what_went_wrong(template: str, says: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(template).render(CONTEXT)
    assert says in str(caught.value)


def test_index_reaches_a_key_that_is_not_an_identifier_and_is_a_reference() -> None:
    template = parse_template(
        '{{index .steps "step-1" "output" "text"}} {{(index .steps "fetch-data").output.n}} '
        "{{index .steps .params.which}}"
    )
    data = {
        "params": {"which": "x"},
        "steps": {"step-1": {"output": {"text": "hi"}}, "fetch-data": {"output": {"n": 2}}, "x": 1},
    }
    assert template.render(data) == "hi 2 1"
    assert template.references() == [
        ("steps", "step-1", "output", "text"),
        ("steps", "fetch-data", "output", "n"),
        ("steps",),
        ("params", "which"),
    ]
