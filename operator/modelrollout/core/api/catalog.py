"""The kinds this operator serves, with their names and printer columns."""

from __future__ import annotations

from modelrollout.core.api import modeldeployment, modelversion, replaytest
from modelrollout.core.api.common import GROUP, VERSION
from modelrollout.core.api.crdgen import CrdInfo, PrinterColumn

MODEL_DEPLOYMENT = CrdInfo(
    group=GROUP,
    version=VERSION,
    kind=modeldeployment.KIND,
    plural=modeldeployment.PLURAL,
    singular="modeldeployment",
    short_names=("md", "mdep"),
    model=modeldeployment.ModelDeployment,
    columns=(
        PrinterColumn("Phase", ".status.phase", description="Stage of the rollout."),
        PrinterColumn("Stable", ".status.stableVersion", description="Version in production."),
        PrinterColumn("Candidate", ".status.candidateVersion", description="Version rolling out."),
        PrinterColumn(
            "Weight",
            ".status.traffic.candidateWeight",
            type="integer",
            description="Percent of live traffic to the candidate.",
        ),
        PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        PrinterColumn(
            "Step", ".status.currentStep", type="integer", description="Bake step.", priority=1
        ),
        PrinterColumn("Message", ".status.message", description="Latest decision.", priority=1),
    ),
)

REPLAY_TEST = CrdInfo(
    group=GROUP,
    version=VERSION,
    kind=replaytest.KIND,
    plural=replaytest.PLURAL,
    singular="replaytest",
    short_names=("rt", "replay"),
    model=replaytest.ReplayTest,
    columns=(
        PrinterColumn("Phase", ".status.phase", description="Pending, Running, Succeeded, Failed."),
        PrinterColumn(
            "Rate",
            ".status.result.rate.target",
            type="number",
            description="Target requests per second.",
        ),
        PrinterColumn(
            "P99ms", ".status.result.latencyMs.p99", type="number", description="p99 latency (ms)."
        ),
        PrinterColumn(
            "ErrorRate", ".status.result.errorRate", type="number", description="errors / sent."
        ),
        PrinterColumn("Verdict", ".status.verdict", description="Passed, Failed, Inconclusive."),
        PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        PrinterColumn(
            "Achieved",
            ".status.result.rate.achieved",
            type="number",
            description="Achieved requests per second.",
            priority=1,
        ),
        PrinterColumn("Job", ".status.jobName", description="The replay Job.", priority=1),
    ),
)

MODEL_VERSION = CrdInfo(
    group=GROUP,
    version=VERSION,
    kind=modelversion.KIND,
    plural=modelversion.PLURAL,
    singular="modelversion",
    short_names=("mv",),
    model=modelversion.ModelVersion,
    columns=(
        PrinterColumn("Model", ".spec.model", description="The model's name."),
        PrinterColumn("Version", ".spec.version", description="The model version."),
        PrinterColumn("Category", ".status.category", description="Its category."),
        PrinterColumn("Stage", ".status.stage", description="Where the version is now."),
        PrinterColumn(
            "P99ms",
            ".status.replay.latencyMs.p99",
            type="number",
            description="p99 latency measured by its replay (ms).",
        ),
        PrinterColumn(
            "Accuracy",
            ".status.replay.accuracy",
            type="number",
            description="Accuracy measured by its replay.",
        ),
        PrinterColumn(
            "Capacity",
            ".status.capacity.rate",
            type="number",
            description="Highest rate (req/s) at which p99 held its target.",
        ),
        PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        PrinterColumn(
            "Deployment",
            ".spec.modelDeployment",
            description="The ModelDeployment.",
            priority=1,
        ),
    ),
)

ALL = (MODEL_DEPLOYMENT, REPLAY_TEST, MODEL_VERSION)
