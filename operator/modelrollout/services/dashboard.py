"""The dashboard's web server: reads the cluster, renders the pages, runs the actions.

Every read and write goes through the :class:`~modelrollout.services.kube.Kube` built
from the user's own kubeconfig, so the dashboard can see and do exactly what the user can
with kubectl, and the API server's audit log names the user. The pages are rendered in
:mod:`modelrollout.core.dashboard`; the actions write what
:mod:`modelrollout.core.steering` decides, through :func:`.steering.steer`, exactly as
the command line does.

A local web server that can write to a cluster is a target for other web pages the
user has open, so:

* it binds 127.0.0.1 unless told otherwise, and answers only requests whose ``Host`` is
  the address it is bound to (a DNS-rebinding page gets 403);
* actions are POST only, carry this process's random CSRF token (a page elsewhere cannot
  read it), and their ``Origin`` (or ``Referer``) must be the dashboard itself;
* every text from the cluster is escaped where the page is rendered.

The Kubernetes client is synchronous; each request runs its calls in a worker thread.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
import socket
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import urllib3
from aiohttp import web
from pydantic import BaseModel, ValidationError

from modelrollout.core import errors
from modelrollout.core.api import modeldeployment, replaytest
from modelrollout.core.api.base import readable
from modelrollout.core.api.modeldeployment import ModelDeployment, ModelDeploymentStatus
from modelrollout.core.api.replaytest import ReplayTest, ReplayTestStatus
from modelrollout.core.clock import utcnow
from modelrollout.core.dashboard import catalog, page, replays, rollouts, timeline
from modelrollout.core.replay.result import ReplayResult, merge_results
from modelrollout.core.steering import for_action
from modelrollout.services import catalog as records
from modelrollout.services.kube import Kube
from modelrollout.services.replay.executors.job import shard_outcomes
from modelrollout.services.steering import Refused, steer

NOTICES_KEPT = 64
RESULTS_KEPT = 64
"""Merged results of succeeded Jobs kept, the most recently viewed."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


Kind = TypeVar("Kind", ModelDeployment, ReplayTest)
STATUS_MODELS: dict[type[Any], type[BaseModel]] = {
    ModelDeployment: ModelDeploymentStatus,
    ReplayTest: ReplayTestStatus,
}


def _model(kind: type[Kind], raw: dict[str, Any]) -> Kind:
    """The typed object; the framework's bookkeeping and the status fields this version
    does not know (a newer operator wrote them) are left out."""
    status_model = STATUS_MODELS[kind]
    return kind.model_validate(readable(raw, status_model, drop_invalid=False))


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return f"not a valid object: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
    return str(exc)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


class Dashboard:
    """The pages and actions over one cluster connection. ``namespace`` None shows every
    namespace; ``hosts`` are the Host values the server answers (set once bound)."""

    def __init__(self, kube: Kube, namespace: str | None) -> None:
        self.kube = kube
        self.namespace = namespace
        self.csrf = secrets.token_urlsafe(32)
        self.hosts: set[str] = set()
        self.any_host = False
        self.notices: OrderedDict[str, page.Notice] = OrderedDict()
        self.results: OrderedDict[str, ReplayResult] = OrderedDict()
        self.scope = f"namespace {namespace}" if namespace else "all namespaces"

    # --- the application -------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.add_routes(
            [
                web.get("/", self.overview),
                web.get("/md/{namespace}/{name}", self.detail),
                web.get("/md/{namespace}/{name}/live", self.live),
                web.post("/md/{namespace}/{name}/{action}", self.act),
                web.get("/replaytests", self.replay_tests),
                web.get("/replaytests/{namespace}/{name}", self.replay_test),
                web.get("/catalog", self.catalog),
            ]
        )
        return app

    def allow(self, address: str, port: int) -> None:
        """Answer requests for ``address:port`` (and localhost for a loopback address);
        an unspecified address (0.0.0.0, ::) answers any Host."""
        ip = ipaddress.ip_address(address)
        if ip.is_unspecified:
            self.any_host = True
            return
        host = f"[{address}]" if ip.version == 6 else address
        self.hosts.add(f"{host}:{port}")
        if ip.is_loopback:
            self.hosts.add(f"localhost:{port}")

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Host checked on every request; Origin and CSRF token on every POST."""
        host = request.host
        if not self.any_host and host not in self.hosts:
            return web.Response(status=403, text=f"unexpected Host {host!r}\n")
        response: web.StreamResponse
        if request.method == "POST":
            origin = request.headers.get("Origin") or _origin_of(request.headers.get("Referer"))
            if origin != f"http://{host}":
                return web.Response(status=403, text="the request did not come from this page\n")
            form = await request.post()
            if not hmac.compare_digest(str(form.get("csrf", "")), self.csrf):
                return web.Response(status=403, text="missing or wrong CSRF token\n")
        try:
            response = await handler(request)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            why = f"cannot reach the Kubernetes API server: {getattr(exc, 'reason', None) or exc}"
            response = _html(page.error_page("No cluster", why, scope=self.scope), 502)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'"
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- ModelDeployments ------------------------------------------------------------
    async def overview(self, request: web.Request) -> web.Response:
        try:
            raws = await asyncio.to_thread(
                self.kube.list_custom, modeldeployment.PLURAL, self.namespace
            )
        except errors.ApiError as exc:
            return _html(rollouts.overview([], scope=self.scope, problem=str(exc)))
        listed = [self._listed(raw) for raw in raws]
        listed.sort(key=lambda item: (item.namespace, item.name))
        return _html(rollouts.overview(listed, scope=self.scope))

    def _listed(self, raw: dict[str, Any]) -> rollouts.Listed:
        meta = raw.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        try:
            return rollouts.Listed(ns, name, _model(ModelDeployment, raw))
        except ValidationError as exc:
            return rollouts.Listed(ns, name, None, _problem(exc))

    def _read_md(self, namespace: str, name: str) -> tuple[ModelDeployment, list[timeline.Entry]]:
        raw = self.kube.get_custom(modeldeployment.PLURAL, namespace, name)
        if raw is None:
            raise errors.NotFound(404, f"ModelDeployment {namespace}/{name}", "not found")
        md = _model(ModelDeployment, raw)
        events = self.kube.list_events(namespace, modeldeployment.KIND, name)
        return md, list(timeline.timeline(md.status or ModelDeploymentStatus(), events))

    async def _md_or_error(
        self, request: web.Request
    ) -> tuple[ModelDeployment, list[timeline.Entry]] | web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        try:
            return await asyncio.to_thread(self._read_md, namespace, name)
        except (errors.ApiError, ValidationError) as exc:
            status = 404 if isinstance(exc, errors.NotFound) else 502
            text = page.error_page(name, _problem(exc), scope=self.scope)
            return _html(text, status)

    async def detail(self, request: web.Request) -> web.Response:
        found = await self._md_or_error(request)
        if isinstance(found, web.Response):
            return found
        md, entries = found
        told = self.notices.get(request.query.get("notice", ""))
        text = rollouts.detail(md, entries, csrf=self.csrf, scope=self.scope, told=told)
        return _html(text)

    async def live(self, request: web.Request) -> web.Response:
        found = await self._md_or_error(request)
        if isinstance(found, web.Response):
            return found
        return _html(rollouts.live(*found))

    async def act(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        decide = for_action(request.match_info["action"], name, fields, utcnow())
        if decide is None:
            raise web.HTTPNotFound(text="no such action\n")
        try:
            done = await asyncio.to_thread(steer, self.kube, namespace, name, decide)
            told = page.Notice("ok", done.message)
        except (Refused, errors.ApiError) as exc:
            told = page.Notice("error", str(exc))
        key = secrets.token_urlsafe(8)
        self.notices[key] = told
        while len(self.notices) > NOTICES_KEPT:
            self.notices.popitem(last=False)
        path = "/md/" + "/".join(urllib.parse.quote(p, safe="") for p in (namespace, name))
        raise web.HTTPSeeOther(f"{path}?notice={key}")

    # --- the catalog -----------------------------------------------------------------
    async def catalog(self, request: web.Request) -> web.Response:
        try:
            entries = await asyncio.to_thread(records.list_records, self.kube, self.namespace)
        except (errors.ApiError, ValidationError) as exc:
            return _html(catalog.listing([], utcnow(), scope=self.scope, problem=_problem(exc)))
        entries.sort(key=lambda x: (x.namespace, x.model, x.version))
        return _html(catalog.listing(entries, utcnow(), scope=self.scope))

    # --- ReplayTests -----------------------------------------------------------------
    async def replay_tests(self, request: web.Request) -> web.Response:
        try:
            raws = await asyncio.to_thread(self.kube.list_custom, replaytest.PLURAL, self.namespace)
        except errors.ApiError as exc:
            return _html(replays.listing([], scope=self.scope, problem=_problem(exc)))
        tests: list[ReplayTest] = []
        unreadable: list[str] = []
        for raw in raws:
            try:
                tests.append(_model(ReplayTest, raw))
            except ValidationError as exc:
                meta = raw.get("metadata") or {}
                where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
                unreadable.append(f"{where}: {_problem(exc)}")
        tests.sort(key=lambda t: (t.metadata.get("namespace", ""), t.metadata.get("name", "")))
        problem = "; ".join(sorted(unreadable))
        return _html(replays.listing(tests, scope=self.scope, problem=problem))

    def _read_test(self, namespace: str, name: str) -> tuple[ReplayTest, ReplayResult | None]:
        raw = self.kube.get_custom(replaytest.PLURAL, namespace, name)
        if raw is None:
            raise errors.NotFound(404, f"ReplayTest {namespace}/{name}", "not found")
        test = _model(ReplayTest, raw)
        return test, self._full_result(test)

    def _full_result(self, test: ReplayTest) -> ReplayResult | None:
        """The merged result of the shards' logs, while the Job's pods are there; kept by
        the Job's UID, so a page view downloads the logs once."""
        status = test.status
        if status is None or status.job_name is None or status.phase != "Succeeded":
            return None
        job = self.kube.get_job(str(test.metadata.get("namespace")), status.job_name)
        if job is None:
            return None
        uid = str(job["metadata"].get("uid") or "")
        if uid in self.results:  # a succeeded Job's logs no longer change
            self.results.move_to_end(uid)
            return self.results[uid]
        results = [o.result for o in shard_outcomes(self.kube, job) if o.result is not None]
        if len(results) != test.spec.parallelism:
            return None
        try:
            merged = merge_results(results, test.spec.success_criteria)
        except ValueError:
            return None
        if uid:
            self.results[uid] = merged
            while len(self.results) > RESULTS_KEPT:
                self.results.popitem(last=False)
        return merged

    async def replay_test(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        try:
            test, full = await asyncio.to_thread(self._read_test, namespace, name)
        except (errors.ApiError, ValidationError) as exc:
            status = 404 if isinstance(exc, errors.NotFound) else 502
            return _html(page.error_page(name, _problem(exc), scope=self.scope), status)
        return _html(replays.page(test, full, scope=self.scope))


def _origin_of(referer: str | None) -> str | None:
    if not referer:
        return None
    parts = urllib.parse.urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}"


def bind(address: str, port: int) -> socket.socket:
    """A listening socket on ``address:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(dashboard: Dashboard, sock: socket.socket) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(dashboard.app(), access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
