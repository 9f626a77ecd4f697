"""The Kubernetes base below ``controller`` and ``gateway``: where the API server is, how to authenticate
to it, and the operator's HTTP transport to it.

- :mod:`kube.credentials`: :class:`~kube.credentials.Connection`, token files re-read as they rotate,
  the CA, :class:`~kube.credentials.ConfigError`;
- :mod:`kube.service_account`: in-cluster credentials (the pod's service account);
- :mod:`kube.kubeconfig`: kubeconfig files and the order a client looks for its configuration in;
- :mod:`kube.plugin_config`: kubeconfigs with exec plugins or auth providers (kubernetes-asyncio);
- :mod:`kube.transport`: the one HTTP seam of the operator's client.

It imports no other package of this project; the submodules are imported one by one so that the data
plane, which needs only credentials, does not load the HTTP client.
"""
