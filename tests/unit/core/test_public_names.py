"""The public surface of ``controller.core`` and ``kube``: the names reconcilers, the gateway and users
import. Renaming or dropping one is an API change; this test makes it a deliberate one."""

from __future__ import annotations

import importlib

import controller.core

CONTROLLER_CORE = """
    CONFIGMAP DEPLOYMENT EVENT LEASE NAMESPACE NETWORKPOLICY PODDISRUPTIONBUDGET PODDISRUPTIONBUDGET_V1BETA1
    POD ROLE ROLEBINDING SECRET SERVICE
    SERVICEACCOUNT STATEFULSET
    ObjectKey Resource
    FIELD_MANAGER ApiError KubeClient
    Cache NotWatchedError OWNER_INDEX IndexFunc Object strip_pod_spec strip_unread_fields
    Applier EventRecorder NORMAL WARNING
    Controller ControllerRunner Mapper ReconcileContext Result TerminalError Watch owner_mapper
    Manager ManagerOptions
    carries controller_of get_condition has_finalizer is_being_deleted is_condition_true owner_reference
    rfc3339 set_condition
"""

KUBE = {
    "kube.credentials": """TOKEN_FILE_REREAD Authorization ConfigError Connection UnsupportedConfigError
        ca_context insecure_context no_authorization read_token static_token token_file_authorization""",
    "kube.service_account": """CA_FILE NAMESPACE_FILE SERVICE_ACCOUNT_DIR TOKEN_FILE
        in_cluster_server service_account service_account_namespace""",
    "kube.kubeconfig": "from_kubeconfig_file load_connection",
    "kube.plugin_config": "plugin_connection",
    "kube.transport": """KubeTransport LazyKubeTransport PoolSizes Request Response Transport TransportError
        decode_json encode_json""",
}


def test_controller_core_exports_exactly_the_pinned_names() -> None:
    assert sorted(controller.core.__all__) == sorted(CONTROLLER_CORE.split())
    assert [name for name in controller.core.__all__ if not hasattr(controller.core, name)] == []


def test_every_kube_module_exports_exactly_the_pinned_names() -> None:
    for module_name, names in KUBE.items():
        module = importlib.import_module(module_name)
        assert sorted(module.__all__) == sorted(names.split()), module_name
        assert [name for name in module.__all__ if not hasattr(module, name)] == [], module_name
