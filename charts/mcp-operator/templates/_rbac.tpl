{{/*
The operator's permissions, in one place. Least privilege: only the verbs and resources the operator
uses. Secrets are read-only (the operator references them, never writes them); pods are read-only
except pods/attach, which the operator grants to each stdio proxy's Role and therefore must hold
itself (RBAC forbids granting what you do not hold). docs/install.md documents every rule.
The rules on the API group's own kinds are generated into _kinds.tpl (hack/generate_chart.py).
Rendered as a ClusterRole (rbac.scope=cluster) or as a Role in each watched namespace.
*/}}
{{- define "mcp-operator.managerRules" -}}
{{ include "mcp-operator.kindRules" . }}
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/attach"]
  verbs: ["create", "get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end -}}

{{/* Leader election: a Lease in the release namespace, and Events about it. */}}
{{- define "mcp-operator.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
