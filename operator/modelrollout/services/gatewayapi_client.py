"""The Gateway API calls the GatewayAPI traffic router makes, as plain dicts.

HTTPRoutes (``gateway.networking.k8s.io/v1``) are custom objects for the Kubernetes
client, so they are read and patched through ``CustomObjectsApi`` on the operator's
``ApiClient``. Errors are mapped onto :mod:`modelrollout.core.errors` as in
:mod:`modelrollout.services.kube`.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from modelrollout.services.kube import FIELD_MANAGER, MERGE, call_json, read_or_none

GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
HTTPROUTES = "httproutes"


class GatewayApi:
    """Reads and patches HTTPRoutes."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api_client)

    def get_httproute(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The HTTPRoute as a dict; None when it does not exist."""
        return read_or_none(
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, HTTPROUTES, name, _preload_content=False
            ),
            f"httproute/{name}",
            resource=HTTPROUTES,
        )

    def patch_httproute(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch of an HTTPRoute with the operator's field manager.

        Put ``metadata.resourceVersion`` in the patch to make it conditional: if the route
        changed since it was read, the apiserver refuses and
        :class:`~modelrollout.core.errors.Conflict` is raised. Returns the patched route.
        """
        return call_json(
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                HTTPROUTES,
                name,
                patch,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE,
                _preload_content=False,
            ),
            f"httproute/{name}",
            verb="patch",
            resource=HTTPROUTES,
        )
