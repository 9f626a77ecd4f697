"""The user's podTemplateSpec over our pod template: what merges, what the operator keeps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.podtemplate import pod_template_problems
from api.problems import Problem
from controller.reconcilers.podtemplate import apply_user_patch, strategic_merge

BASE = {
    "metadata": {"labels": {"app.kubernetes.io/instance": "s"}},
    "spec": {
        "containers": [
            {
                "name": "mcp",
                "image": "ghcr.io/example/server:1",
                "args": ["--stdio"],
                "env": [{"name": "A", "value": "1"}],
                "securityContext": {"readOnlyRootFilesystem": False, "runAsNonRoot": True},
            }
        ],
        "securityContext": {"runAsNonRoot": True},
        "tolerations": [{"key": "a", "operator": "Exists"}],
    },
}
OWNED = {"name": "mcp", "image": "ghcr.io/example/server:1", "args": ["--stdio"], "stdin": True}
LABELS = {"app.kubernetes.io/instance": "s"}


def test_patch_adds_env_sidecar_and_node_selector_and_keeps_ours() -> None:
    patch = {
        "metadata": {"labels": {"team": "a", "app.kubernetes.io/instance": "hijack"}},
        "spec": {
            "nodeSelector": {"pool": "mcp"},
            "containers": [
                {"name": "mcp", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "override"}]},
                {"name": "sidecar", "image": "busybox"},
            ],
        },
    }
    merged = apply_user_patch(BASE, patch, OWNED, LABELS)
    mcp, sidecar = merged["spec"]["containers"]
    assert mcp["env"] == [{"name": "A", "value": "override"}, {"name": "B", "value": "2"}]
    assert sidecar == {"name": "sidecar", "image": "busybox"}
    assert merged["spec"]["nodeSelector"] == {"pool": "mcp"}
    assert merged["metadata"]["labels"] == {"team": "a", "app.kubernetes.io/instance": "s"}


def test_patch_cannot_replace_image_args_or_stdin_of_the_server_container() -> None:
    patch = {"spec": {"containers": [{"name": "mcp", "image": "evil", "args": [], "stdin": False}]}}
    mcp = apply_user_patch(BASE, patch, OWNED, LABELS)["spec"]["containers"][0]
    assert (mcp["image"], mcp["args"], mcp["stdin"]) == ("ghcr.io/example/server:1", ["--stdio"], True)


def test_patch_may_relax_security_context_it_is_allowed_to() -> None:
    patch = {"spec": {"containers": [{"name": "mcp", "securityContext": {"runAsUser": 1000}}]}}
    mcp = apply_user_patch(BASE, patch, OWNED, LABELS)["spec"]["containers"][0]
    assert mcp["securityContext"] == {
        "readOnlyRootFilesystem": False,
        "runAsNonRoot": True,
        "runAsUser": 1000,
    }


def test_null_deletes_and_tolerations_append() -> None:
    patch = {"spec": {"securityContext": None, "tolerations": [{"key": "b", "operator": "Exists"}]}}
    merged = apply_user_patch(BASE, patch, OWNED, LABELS)
    assert "securityContext" not in merged["spec"]
    assert [t["key"] for t in merged["spec"]["tolerations"]] == ["a", "b"]


def test_merge_does_not_mutate_inputs() -> None:
    before = repr(BASE)
    apply_user_patch(BASE, {"spec": {"containers": [{"name": "mcp", "env": []}]}}, OWNED, LABELS)
    assert repr(BASE) == before


def test_problems_name_the_field() -> None:
    assert pod_template_problems({"spec": {"containers": "mcp"}}) == [
        Problem("spec.podTemplateSpec.spec.containers", "must be a list of objects")
    ]
    assert pod_template_problems({"spec": {"containers": [{"image": "x"}]}}) == [
        Problem("spec.podTemplateSpec.spec.containers[0].name", "is required (items merge by name)")
    ]
    assert pod_template_problems({"metadata": {"labels": {"a": 1}}})[0].field == (
        "spec.podTemplateSpec.metadata.labels"
    )
    assert pod_template_problems({"spec": {"containers": [{"name": "mcp", "env": {"A": "1"}}]}}) == [
        Problem("spec.podTemplateSpec.spec.containers[0].env", "must be a list")
    ]
    stray = pod_template_problems({"kind": "Pod"})[0]  # one validator for every kind (api.rules uses it)
    assert stray.field == "spec.podTemplateSpec" and "'kind'" in stray.message
    assert pod_template_problems("nope")[0].field == "spec.podTemplateSpec"
    assert pod_template_problems({"spec": {"nodeSelector": {"a": "b"}, "containers": [{"name": "x"}]}}) == []


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3))
json_values = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=4))
def test_merging_an_empty_patch_is_identity(doc: dict[str, object]) -> None:
    assert strategic_merge(doc, {}) == doc


@given(
    st.dictionaries(st.text(max_size=4).filter(bool), json_values.filter(lambda v: v is not None), max_size=4)
)
def test_patch_keys_win(patch: dict[str, object]) -> None:
    merged = strategic_merge({"keep": 1}, patch)
    for key, value in patch.items():
        if not isinstance(value, dict):
            assert merged[key] == value
