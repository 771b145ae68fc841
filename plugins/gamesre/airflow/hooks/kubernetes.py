"""A kubernetes ApiClient from the cncf-kubernetes provider's KubernetesHook (default connection `kubernetes_default`).

The integrations in gamesre.integrations.kubernetes take a plain ApiClient; this is the one place that builds
it from an Airflow connection (kubeconfig in the extra, in-cluster, or the default kubeconfig file).
"""
from __future__ import annotations

from kubernetes import client


def api_client(conn_id: str = "kubernetes_default") -> client.ApiClient:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=conn_id).api_client
