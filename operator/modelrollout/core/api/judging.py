"""Statistical judges in the analysis: the candidate compared with stable in the same
time window, instead of against a fixed threshold.

A judge reads one metric of both tracks from Prometheus (a latency histogram's buckets, or
request and error counters) over the same window and asks whether the candidate is worse
than stable by more than a tolerated effect, with a stated confidence
(:mod:`modelrollout.core.judge`). Its outcome, with the p-value, the effect and its
interval and the sample sizes, is a measurement like an SLO's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel, cel, validations
from modelrollout.core.api.common import Duration, ShortName

METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
TRACK_SELECTOR = 'version="{{ version }}"'

_SELECTOR_HELP = (
    "PromQL label matchers (without braces) that select one track's series. "
    "{{ version }} is the judged track's model version and {{ service }} its Service; "
    "the SLO variables may be used too."
)


class LatencySource(ApiModel):
    """A Prometheus histogram of request durations, read per track as the increase of
    each bucket over the window."""

    histogram: str = Field(
        pattern=METRIC_NAME,
        max_length=256,
        description="Base name of the histogram, without _bucket, for example "
        "modelserver_request_duration_seconds.",
    )
    selector: str = Field(default=TRACK_SELECTOR, max_length=2048, description=_SELECTOR_HELP)
    unit: Literal["Seconds", "Milliseconds"] = Field(
        default="Seconds", description="The unit of the histogram's bucket bounds."
    )


class ErrorsSource(ApiModel):
    """A request counter, read per track as its increase over the window: all requests,
    and the ones that failed."""

    counter: str = Field(
        pattern=METRIC_NAME,
        max_length=256,
        description="Name of the request counter, for example modelserver_requests_total.",
    )
    selector: str = Field(default=TRACK_SELECTOR, max_length=2048, description=_SELECTOR_HELP)
    error_selector: str = Field(
        default='code=~"5.."',
        min_length=1,
        max_length=1024,
        description="Further label matchers that select the failed requests.",
    )


class Judge(ApiModel):
    """A comparison of the candidate with stable over the same window, every analysis
    interval. Latency: a rank test of the whole distribution with a Hodges-Lehmann shift,
    a tail test on stable's 99th percentile and a spread test. Errors: an exact
    conditional test of the two error rates, which behaves at low counts and at zero.

    Each measurement is Fail when the candidate is worse than stable by more than the
    tolerance with the given confidence, Pass with enough samples otherwise, and
    Inconclusive below minSamples (never a pass). The window is everything since the
    bake (or the production watch) began, so samples accumulate, and the confidence of
    each look is adjusted for the number of looks (O'Brien-Fleming spending), so that
    looking every interval does not raise the false rollback rate. During a production
    watch, the promoted version is judged against the previous version's figures from
    the same length of time before the promotion.
    """

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "self.metric != 'Latency' || has(self.latency)",
                "latency is required when metric is Latency",
            ),
            cel(
                "self.metric != 'Errors' || has(self.errors)",
                "errors is required when metric is Errors",
            ),
        )
    }

    name: ShortName = Field(description="Unique name of the judge (among SLOs and judges).")
    metric: Literal["Latency", "Errors"] = Field(description="What is compared.")
    latency: LatencySource | None = Field(
        default=None, description="For metric Latency: the histogram."
    )
    errors: ErrorsSource | None = Field(
        default=None, description="For metric Errors: the request counter."
    )
    tolerance: float = Field(
        default=0.05,
        ge=0,
        le=10,
        description="The regression tolerated, relative to stable: 0.05 lets the median, "
        "the 99th percentile and the spread rise by 5 %, or the error rate by 5 % (with at "
        "least 0.1 percentage point of slack when stable has no errors).",
    )
    confidence: float = Field(
        default=0.99,
        ge=0.5,
        le=0.9999,
        description="How sure the judge must be that the regression exceeds the tolerance "
        "before it fails the candidate, over all the looks of the stage.",
    )
    min_samples: int = Field(
        default=200,
        ge=10,
        le=10_000_000,
        description="Requests needed on each track; fewer is Inconclusive.",
    )
    failure_limit: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="How many Fail measurements are tolerated; one more fires the judge.",
    )
    inconclusive_limit: int = Field(
        default=1000,
        ge=0,
        le=1000,
        description="How many Inconclusive measurements (too few samples) are tolerated "
        "before the rollout pauses for a person to decide. A step never ends on an "
        "Inconclusive measurement.",
    )
    consecutive_error_limit: int = Field(
        default=4,
        ge=0,
        le=1000,
        description="How many query errors in a row are tolerated before the judge fails.",
    )


class ShadowStage(ApiModel):
    """Before the weighted steps: the candidate answers a sampled share of live requests
    without its answers being served, and its answers are compared with stable's.

    The capture sidecar of every stable pod sends each sampled request, once answered,
    twice more at the same moment: to the candidate and to its own model. Stable's second
    answers are its noise floor (a model that is not deterministic disagrees with itself);
    the candidate's disagreement is judged against that floor, with a confidence interval.
    Needs monitoring.capture. The stage ends after its duration with a Pass; a Fail rolls
    the candidate back; too few pairs holds the rollout.
    """

    duration: Duration = Field(
        default="5m", description="How long the candidate is shadowed, at least."
    )
    sample: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Fraction of the requests each stable pod answers that is shadowed.",
    )
    min_pairs: int = Field(
        default=200,
        ge=10,
        le=10_000_000,
        description="Answers to pair, on each side, before a verdict; fewer holds the stage.",
    )
    max_extra_disagreement: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="How much more often than stable disagrees with itself the candidate "
        "may disagree with stable: 0.01 is one percentage point.",
    )
    latency_tolerance: float | None = Field(
        default=None,
        ge=0,
        le=10,
        description="When set, the candidate's shadow latency is judged against stable's "
        "second answers (sent at the same moment) like a Latency judge, with this "
        "tolerance.",
    )
    confidence: float = Field(
        default=0.99,
        ge=0.5,
        le=0.9999,
        description="How sure the stage must be that the candidate exceeds a tolerance "
        "before it fails it.",
    )
