"""The catalog's I/O: read and write the ModelVersion records.

A ModelDeployment's reconcile calls :func:`record_rollout` after it has decided; it reads and
writes records only when the status changed something a record shows (a new stage, a replay
result, a bake measurement) or when the usage query is due, so an idle reconcile costs no
request. A labelled ReplayTest that measured a capacity calls :func:`record_capacity` once,
when it finishes.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from modelrollout.core import analysis, catalog, errors, names
from modelrollout.core.api import modeldeployment, modelversion
from modelrollout.core.api.base import parse_duration
from modelrollout.core.api.common import API_VERSION
from modelrollout.core.api.modeldeployment import ModelDeployment, ModelDeploymentStatus
from modelrollout.core.api.modelversion import ModelVersionStatus, Stage
from modelrollout.core.clock import parse_rfc3339, rfc3339
from modelrollout.core.replay.result import ReplaySummary
from modelrollout.core.rollout import ReplayView
from modelrollout.core.workloads import LABEL_NAME, LABEL_VERSION
from modelrollout.services import baking, providers
from modelrollout.services.kube import Kube

log = logging.getLogger(__name__)

_usage_at: dict[tuple[str, str], float] = {}
"""When the usage query last ran per ModelDeployment (a cadence, not progress: after a
restart it simply runs at once)."""


def _read(kube: Kube, namespace: str, name: str) -> ModelVersionStatus | None:
    raw = kube.get_custom(modelversion.PLURAL, namespace, name)
    if raw is None or not raw.get("status"):
        return None
    return ModelVersionStatus.model_validate(raw["status"])


def _write(
    kube: Kube,
    owner: dict[str, Any],
    version: str,
    model: str,
    record: ModelVersionStatus,
    previous: ModelVersionStatus | None,
) -> None:
    if previous is not None and record == previous:
        return  # the object, its labels and its status are as they should be
    deployment = str(owner["name"])
    namespace = str(owner["namespace"])
    name = catalog.record_name(deployment, version)
    labels = {LABEL_NAME: deployment}
    if names.is_label_value(version):
        labels[LABEL_VERSION] = version
    if record.category and names.is_label_value(record.category):
        labels[modelversion.CATEGORY_LABEL] = record.category
    kube.apply_custom(
        modelversion.PLURAL,
        {
            "apiVersion": API_VERSION,
            "kind": modelversion.KIND,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": modeldeployment.KIND,
                        "name": deployment,
                        "uid": owner["uid"],
                        "controller": True,
                        "blockOwnerDeletion": False,
                    }
                ],
            },
            "spec": {"modelDeployment": deployment, "model": model, "version": version},
        },
    )
    status = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    kube.patch_status(modelversion.PLURAL, namespace, name, status)


def _serving_since(record: ModelVersionStatus | None) -> datetime | None:
    for entry in record.stages if record is not None else []:
        if entry.stage in ("Baking", "Production"):
            return parse_rfc3339(entry.entered_at)
    return None


def _live_requests(
    kube: Kube, md: ModelDeployment, version: str, since: datetime | None, now: datetime
) -> float | None:
    query = md.spec.catalog.requests_query
    baking_stage = md.spec.stages.baking
    if query is None or since is None or baking_stage is None or baking_stage.analysis is None:
        return None
    variables = baking.query_variables(md) | {
        "version": version,
        "range": f"{max(1, int((now - since).total_seconds()))}s",
    }
    try:
        provider = baking.provider_for(
            kube, str(md.metadata["namespace"]), baking_stage.analysis.provider
        )
        return provider.query(
            analysis.render_query(query, variables, field="spec.catalog.requestsQuery")
        )
    except (providers.MetricQueryError, errors.InvalidSpec) as exc:
        log.info("catalog usage of %s %s not measured: %s", md.metadata["name"], version, exc)
        return None


def record_rollout(
    kube: Kube,
    md: ModelDeployment,
    before: ModelDeploymentStatus | None,
    after: ModelDeploymentStatus,
    replay: ReplayView | None,
    now: datetime,
) -> None:
    """Fold this reconcile into the records of the versions it speaks of."""
    if not md.spec.catalog.enabled:
        return
    meta = md.metadata
    key = (str(meta["namespace"]), str(meta["name"]))
    interval = parse_duration(md.spec.catalog.usage_interval)
    usage_due = (
        md.spec.catalog.requests_query is not None
        and time.monotonic() - _usage_at.get(key, -interval) >= interval
    )
    if not catalog.changed(before, after) and not usage_due:
        return
    if usage_due:
        _usage_at[key] = time.monotonic()
    measured = catalog.measured_version(before, after)
    for version, (stage, reason) in catalog.stages_now(before, after).items():
        name = catalog.record_name(key[1], version)
        previous = _read(kube, key[0], name)
        seen = None
        if (
            version == measured
            and replay is not None
            and replay.result is not None
            and replay.phase in ("Succeeded", "Failed")
        ):
            seen = catalog.ReplaySeen(
                name=replay.name,
                verdict=replay.verdict,
                summary=replay.result,
                finished_at=replay.completion_time,
                predecessor=after.stable_version if after.stable_version != version else None,
            )
        own_template = md.spec.model.version == version
        view = catalog.VersionView(
            md=md,
            version=version,
            stage=stage,
            reason=reason,
            template=md.spec.workload.template if own_template else None,
            template_hash=(after.candidate_hash or after.stable_hash) if own_template else None,
            replicas=md.spec.workload.replicas if own_template else None,
            replay=seen,
            bake=catalog.bake_figures(after, stage) if version == measured else None,
            live_requests=(
                _live_requests(kube, md, version, _serving_since(previous), now)
                if usage_due and stage in ("Baking", "Production")
                else None
            ),
        )
        record = catalog.update(previous, view, now)
        _write(kube, {**meta}, version, md.spec.model.name, record, previous)


def record_capacity(
    kube: Kube, raw: dict[str, Any], summary: ReplaySummary, verdict: str, now: datetime
) -> None:
    """A finished ReplayTest labelled with a ModelDeployment's name and a version, whose
    result holds a capacity: put it (and its figures, when the record has none) in that
    version's record."""
    meta = raw["metadata"]
    labels = meta.get("labels") or {}
    deployment, version = labels.get(LABEL_NAME), labels.get(LABEL_VERSION)
    if summary.capacity is None or not deployment or not version:
        return
    namespace = str(meta["namespace"])
    owner = kube.get_custom(modeldeployment.PLURAL, namespace, deployment)
    if owner is None:
        log.info("capacity of %s not recorded: no ModelDeployment %s", meta["name"], deployment)
        return
    md = ModelDeployment.model_validate({k: v for k, v in owner.items() if k != "status"})
    name = catalog.record_name(deployment, version)
    previous = _read(kube, namespace, name)
    stage: Stage = previous.stage if previous is not None else "NonProduction"
    seen = catalog.ReplaySeen(
        name=str(meta["name"]), verdict=verdict, summary=summary, finished_at=rfc3339(now)
    )
    record = catalog.update(
        previous,
        catalog.VersionView(md=md, version=version, stage=stage, reason="", replay=seen),
        now,
    )
    if previous is not None and previous.replay is not None:
        record = record.model_copy(update={"replay": previous.replay})  # the rollout's own
    _write(kube, owner["metadata"], version, md.spec.model.name, record, previous)


def list_records(kube: Kube, namespace: str | None) -> list[catalog.Entry]:
    """Every record in ``namespace`` (every namespace for None), oldest first."""
    entries = []
    for raw in kube.list_custom(modelversion.PLURAL, namespace, ""):
        if not raw.get("status"):
            continue
        meta, spec = raw["metadata"], raw.get("spec") or {}
        entries.append(
            catalog.Entry(
                name=str(meta["name"]),
                namespace=str(meta["namespace"]),
                deployment=str(spec.get("modelDeployment", "")),
                model=str(spec.get("model", "")),
                version=str(spec.get("version", "")),
                status=ModelVersionStatus.model_validate(raw["status"]),
            )
        )
    return entries
