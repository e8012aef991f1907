"""Types shared by both kinds: conditions, references, endpoints and durations.

Conditions follow the Kubernetes API conventions (``metav1.Condition``): a ``type``, a
``status`` of ``True``/``False``/``Unknown``, a CamelCase ``reason``, a human ``message``,
the ``observedGeneration`` they were computed for, and a ``lastTransitionTime`` that moves
only when ``status`` changes. :mod:`modelrollout.core.conditions` implements that rule.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from modelrollout.core.api.base import DURATION_PATTERN, ApiModel, cel, validations

GROUP = "modelrollout.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=32,
        examples=["30s", "10m", "1h30m"],
    ),
]
"""A duration such as ``30s``, ``10m``, ``1h30m``, ``250ms`` or plain seconds (``45``)."""

EmbeddedObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""A Kubernetes object kept whole (for example a pod template); the apiserver validates it
when the operator creates the object built from it."""

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
ShortName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """One observation of the object's state, as in the Kubernetes API conventions."""

    type: str = Field(
        description="The aspect this condition describes, in CamelCase (for example Ready).",
        max_length=316,
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="A CamelCase word that says why the condition has its status.",
        max_length=1024,
        min_length=1,
    )
    message: str = Field(
        default="",
        description="A human-readable explanation; may be empty.",
        max_length=32768,
    )
    observed_generation: int | None = Field(
        default=None,
        description="The metadata.generation this condition was computed for.",
        ge=0,
    )
    last_transition_time: str = Field(
        description="When status last changed, in RFC 3339.",
        json_schema_extra={"format": "date-time"},
    )


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace."""

    name: ObjectName = Field(description="Name of the referenced object.")


class KeyReference(ApiModel):
    """A key of a ConfigMap or Secret in the same namespace."""

    name: ObjectName = Field(description="Name of the ConfigMap or Secret.")
    key: str = Field(
        description="Key inside the object's data.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class ServiceEndpoint(ApiModel):
    """An HTTP endpoint reached through a Service in the same namespace."""

    name: ShortName = Field(description="Name of the Service.")
    port: int = Field(default=80, description="Service port.", ge=1, le=65535)
    path: str = Field(
        default="/",
        description="HTTP path of the prediction endpoint, starting with a slash.",
        pattern=r"^/",
        max_length=2048,
    )
    scheme: Literal["http", "https"] = Field(default="http", description="http or https.")


class Endpoint(ApiModel):
    """Where requests are sent: exactly one of url, service or modelDeployment."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "[has(self.url), has(self.service), has(self.modelDeployment)]"
                ".filter(x, x).size() == 1",
                "exactly one of url, service or modelDeployment must be set",
            )
        )
    }

    url: str | None = Field(
        default=None,
        description="A full http(s) URL of the prediction endpoint.",
        pattern=r"^https?://",
        max_length=2048,
    )
    service: ServiceEndpoint | None = Field(
        default=None, description="A Service in the same namespace."
    )
    model_deployment: ModelDeploymentEndpoint | None = Field(
        default=None,
        description="The stable or candidate workload of a ModelDeployment in the same "
        "namespace; the operator resolves it to that workload's Service.",
    )


class ModelDeploymentEndpoint(ApiModel):
    """One track of a ModelDeployment, used as a replay target or baseline."""

    name: ShortName = Field(description="Name of the ModelDeployment.")
    track: Literal["stable", "candidate"] = Field(
        description="stable is the production model; candidate is the version under test."
    )


Endpoint.model_rebuild()
