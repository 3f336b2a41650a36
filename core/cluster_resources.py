"""Cluster resources (flyteadmin-behaviour.md §10): Kubernetes objects rendered from templates for
every active project-domain and applied with server-side apply.

Pure parts: reading the templates, the variables of one project-domain, rendering (text
substitution of ``{{ name }}``, then multi-document YAML). The rest applies the objects through
the core's Kubernetes client and remembers, per project-domain, a hash of what was last applied,
so unchanged content is not sent again until ``reapply_seconds`` have passed. Failures are per
project-domain: logged, and posted as a Warning Event on the Project object when they change.
docs/cluster-resources.md describes the behaviour for users.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from flyteidl.admin import matchable_resource_pb2, project_pb2
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from flyteadmin.core import crds, kube, metrics
from flyteadmin.core.attributes import Attributes
from flyteadmin.core.cluster_targets import Target, Targets, unavailable_reason
from flyteadmin.core.config import ClusterResourceSettings, Settings
from flyteadmin.core.k8s_events import Involved, post_event
from flyteadmin.core.namespaces import namespace_for, reconcile_project_namespaces
from flyteadmin.core.store import Collection, Stored

log = logging.getLogger(__name__)

CLUSTER_RESOURCE = matchable_resource_pb2.MatchableResource.CLUSTER_RESOURCE
FIELD_MANAGER = "flyteadmin-cluster-resources"
RESERVED = ("namespace", "project", "domain")
TEMPLATE_SUFFIXES = (".yaml", ".yml")
EVENT_COMPONENT = "flyteadmin-cluster-resources"

# `{{ name }}` with any (or no) spaces inside the braces; a name has no spaces or braces.
_VARIABLE = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
# `v1` or `<group>/<version>`: it becomes part of a URL path.
_API_VERSION = re.compile(r"(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]+")
_APPLY = "application/apply-patch+yaml"


class ClusterResourceError(Exception):
    """Why the objects of one project-domain could not be rendered or applied."""


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    """File name, for error messages and ordering."""
    text: str


# ---- pure: templates, variables, rendering ----------------------------------------------------


def read_templates(directory: str | Path) -> tuple[Template, ...]:
    """The ``*.yaml``/``*.yml`` files of ``directory``, by name. Hidden entries are skipped: a
    ConfigMap volume holds its files as symlinks next to ``..data`` directories."""
    root = Path(directory)
    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise ClusterResourceError(f"cannot read the templates directory {root}: {exc}") from exc
    templates = []
    for path in entries:
        if path.name.startswith(".") or path.suffix not in TEMPLATE_SUFFIXES or not path.is_file():
            continue
        try:
            templates.append(Template(path.name, path.read_text()))
        except (OSError, UnicodeDecodeError) as exc:
            raise ClusterResourceError(f"cannot read template {path}: {exc}") from exc
    return tuple(templates)


def templates_digest(templates: Iterable[Template]) -> str:
    h = hashlib.sha256()
    for t in templates:
        h.update(json.dumps([t.name, t.text]).encode())
    return h.hexdigest()


def config_data(
    cfg: ClusterResourceSettings, read: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """template_data plus template_data_files (read now) -> {variable: value}."""
    read = read or (lambda p: Path(p).read_text())
    data = dict(cfg.template_data)
    for name, path in cfg.template_data_files.items():
        if name in data:
            raise ClusterResourceError(
                f"cluster_resources: variable {name!r} is in both template_data and "
                "template_data_files"
            )
        try:
            value = read(path)
        except OSError as exc:
            raise ClusterResourceError(
                f"cluster_resources.template_data_files.{name}: cannot read {path}: {exc}"
            ) from exc
        data[name] = value[:-1] if value.endswith("\n") else value
    return data


def variables_for(
    *,
    project: str,
    domain: str,
    namespace: str,
    attribute: Mapping[str, str],
    domain_data: Mapping[str, str],
    common_data: Mapping[str, str],
    cluster_data: Mapping[str, str] | None = None,
    cluster: str = "",
) -> dict[str, str]:
    """The variables of one project-domain in one cluster. Precedence, as in flyteadmin: the
    CLUSTER_RESOURCE attribute, then the domain's custom_data, then template_data; the
    cluster's own template_data (ours) sits between custom_data and template_data. The reserved
    names are always the system's: defining one anywhere is an error (flyteadmin only refuses
    it in config)."""
    sources = (
        ("template_data", common_data),
        (f"the template_data of execution cluster {cluster}", cluster_data or {}),
        (f"custom_data.{domain}", domain_data),
        (f"the CLUSTER_RESOURCE attribute of {project}/{domain}", attribute),
    )
    values: dict[str, str] = {}
    for where, source in sources:
        reserved = sorted(set(source) & set(RESERVED))
        if reserved:
            raise ClusterResourceError(
                f"{where} defines the reserved variable(s) {', '.join(reserved)}; "
                "namespace, project and domain are set by the control plane"
            )
        values.update(source)
    values.update(namespace=namespace, project=project, domain=domain)
    return values


def substitute(text: str, values: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace every ``{{ name }}``; returns the text and the names that have no value (left
    in place). Values are inserted as they are, unparsed: quote them in the template when YAML
    must read them as strings."""
    missing: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        if name not in missing:
            missing.append(name)
        return match.group(0)

    return _VARIABLE.sub(one, text), missing


def render(templates: Iterable[Template], values: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every object of every template, in file then document order. Undefined variables, YAML
    errors and documents that are not Kubernetes objects are errors (the whole project-domain
    fails, so a half-rendered set is never applied)."""
    objects: list[dict[str, Any]] = []
    missing: list[str] = []
    for template in templates:
        text, unknown = substitute(template.text, values)
        if unknown:
            missing.append(f"{template.name}: {', '.join(unknown)}")
            continue
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise ClusterResourceError(
                f"template {template.name} is not valid YAML: {exc}"
            ) from exc
        for index, doc in enumerate(documents, start=1):
            if doc is None:
                continue  # an empty document (e.g. a trailing ---)
            objects.append(_checked_object(doc, f"template {template.name}, document {index}"))
    if missing:
        raise ClusterResourceError(
            "undefined template variable(s): "
            + "; ".join(missing)
            + " (set them in a CLUSTER_RESOURCE attribute or in cluster_resources.custom_data "
            "or template_data)"
        )
    return objects


def _checked_object(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ClusterResourceError(f"{where}: expected a Kubernetes object, got {doc!r:.80}")
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ClusterResourceError(f"{where}: {key} is missing")
    if not _API_VERSION.fullmatch(doc["apiVersion"]):
        raise ClusterResourceError(f"{where}: invalid apiVersion {doc['apiVersion']!r}")
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise ClusterResourceError(f"{where}: metadata.name is missing")
    if not metadata["name"]:
        raise ClusterResourceError(f"{where}: metadata.name is empty")
    return doc


def objects_digest(namespace: str, objects: list[dict[str, Any]]) -> str:
    payload = json.dumps([namespace, objects], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def apply_order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Namespaces first (the others may live in them), then template order."""
    return sorted(
        objects, key=lambda o: 0 if (o["apiVersion"], o["kind"]) == ("v1", "Namespace") else 1
    )


# ---- the Kubernetes side: discovery and server-side apply --------------------------------------


def _call(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """One request with the client's credentials (the generated client has no call for an
    arbitrary kind). Raises ApiException on a non-2xx answer."""
    request = api.param_serialize(
        method,
        path,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=kube.SYNC_TIMEOUT)
    response.read()
    if not 200 <= response.status <= 299:
        api.response_deserialize(response, {})  # raises ApiException with the Status body
    found: dict[str, Any] = json.loads(response.data or b"{}")
    return found


@dataclasses.dataclass(frozen=True)
class ResourceInfo:
    plural: str
    namespaced: bool


class Mapper:
    """apiVersion + kind -> REST resource, from API discovery (cached; refreshed on a miss, so
    kinds of CRDs installed later are found)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._cache: dict[str, dict[str, ResourceInfo]] = {}

    def _discover(self, api_version: str) -> dict[str, ResourceInfo]:
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            listing = _call(self._api, "GET", path)
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise
        return {
            r["kind"]: ResourceInfo(r["name"], bool(r.get("namespaced")))
            for r in listing.get("resources", [])
            if "/" not in r["name"]  # subresources
        }

    def info(self, api_version: str, kind: str) -> ResourceInfo:
        known = self._cache.get(api_version, {})
        if kind not in known:
            known = self._cache[api_version] = self._discover(api_version)
        if kind not in known:
            raise ClusterResourceError(f"the cluster serves no kind {kind} in {api_version}")
        return known[kind]

    def path(self, obj: dict[str, Any], namespace: str) -> str:
        """The object's REST path; a namespaced object is placed in ``namespace`` (it may name
        no other), a cluster-scoped one loses any namespace it names."""
        info = self.info(obj["apiVersion"], obj["kind"])
        metadata = obj["metadata"]
        prefix = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
        name = quote(metadata["name"], safe="")  # an invalid name is the apiserver's to refuse
        if not info.namespaced:
            metadata.pop("namespace", None)
            return f"{prefix}/{info.plural}/{name}"
        own = metadata.setdefault("namespace", namespace)
        if own != namespace:
            raise ClusterResourceError(
                f"{obj['kind']} {metadata['name']} names namespace {own!r}; templates may only "
                f"create namespaced objects in the project-domain's namespace {namespace!r}"
            )
        return f"{prefix}/namespaces/{quote(namespace, safe='')}/{info.plural}/{name}"


def apply_objects(
    api: client.ApiClient, mapper: Mapper, namespace: str, objects: list[dict[str, Any]]
) -> None:
    """Server-side apply of each object, as field manager ``FIELD_MANAGER``, forcing conflicts
    (the templates own the fields they set; fields they do not set are left to others). One
    object's failure does not keep the others from being applied; all failures are raised
    together at the end."""
    query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
    errors = []
    for obj in apply_order([json.loads(json.dumps(o)) for o in objects]):
        what = f"{obj['kind']} {obj['metadata']['name']}"
        try:
            path = mapper.path(obj, namespace)
            _call(api, "PATCH", path, query=query, body=obj, content_type=_APPLY)
        except ApiException as exc:
            errors.append(f"apply {what}: {exc.status} {kube.status_message(exc)}")
        except ClusterResourceError as exc:
            errors.append(f"apply {what}: {exc}")
    if errors:
        raise ClusterResourceError("; ".join(errors))


# ---- the service: one pass over project-domains ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    project: str
    domain: str
    namespace: str
    status: str
    """``applied``, ``unchanged``, ``failed``, or ``skipped`` (its cluster is unavailable)."""
    error: str = ""
    cluster: str = ""
    """The execution cluster; "" for the control plane's own."""
    changed: bool = False
    """``applied``: new content (else the same content again, after ``reapply_seconds``)."""

    @property
    def metric(self) -> str:
        """The outcome in ``flyteadmin_cluster_resource_syncs_total``."""
        if self.status == "applied":
            return "changed" if self.changed else "reapplied"
        return self.status


class ClusterResources:
    """Renders and applies the objects of project-domains in each cluster that gets them
    (``Targets.resource_targets``); remembers what it applied there.

    ``sync`` calls are serialized (one lock), so the periodic pass and the attribute handler
    never apply the same project-domain concurrently. The state is in memory only: after a
    restart the first pass applies everything once (server-side apply of unchanged objects
    changes nothing on the server). A cluster found unavailable is skipped (no Project Event:
    the cause is the cluster's, reported once by ``Targets``) until it is back.
    """

    def __init__(
        self,
        api: client.ApiClient,
        settings: Settings,
        *,
        attributes: Attributes,
        projects: Collection[project_pb2.Project],
        clock: Callable[[], float] = time.monotonic,
        targets: Targets | None = None,
    ) -> None:
        self._api = api
        self._cfg = settings.cluster_resources
        self._namespace_template = settings.operator.namespace_template
        self._domains = settings.domain_ids()
        self._store_namespace = settings.kubernetes.namespace
        self._attributes = attributes
        self._projects = projects
        self._clock = clock
        self._targets = targets or Targets.local(api)
        self._mappers: dict[str, Mapper] = {}
        Key = tuple[str, str, str]  # (cluster, project, domain)
        self._applied: dict[Key, tuple[str, float]] = {}
        self._errors: dict[Key, str] = {}
        self._templates_digest = ""
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._cfg.templates_dir)

    def errors(self) -> dict[tuple[str, str, str], str]:
        """The current error of each failing (cluster, project, domain)."""
        return dict(self._errors)

    def namespace(self, project: str, domain: str) -> str:
        return namespace_for(self._namespace_template, project, domain)

    async def sync(
        self,
        projects: Iterable[str] | None = None,
        domains: Iterable[str] | None = None,
        *,
        force: bool = False,
        clusters: Iterable[str] | None = None,
    ) -> list[Outcome]:
        """Render and apply the objects of the active ``projects`` x ``domains`` in
        ``clusters`` (None: all). Unchanged content is skipped unless ``force`` or its last
        apply is older than ``reapply_seconds``. Never raises for one project-domain's
        failure."""
        async with self._lock:
            chosen = None if domains is None else set(domains)
            wanted_domains = [d for d in self._domains if chosen is None or d in chosen]
            targets = self._targets.resource_targets()
            if clusters is not None:
                targets = [t for t in targets if t.name in set(clusters)]
            projects_ = self._active_projects(projects) if wanted_domains else []
            try:
                templates, common = await asyncio.to_thread(self._read_inputs)
                shared_error = ""
            except ClusterResourceError as exc:
                templates, common, shared_error = (), {}, str(exc)
            outcomes = []
            for target in targets:
                for stored in projects_:
                    for domain in wanted_domains:
                        outcomes.append(
                            await self._sync_one(
                                target, stored, domain, templates, common, shared_error, force
                            )
                        )
                        metrics.cluster_resource_synced(outcomes[-1].metric)
            return outcomes

    def _active_projects(self, ids: Iterable[str] | None) -> list[Stored[project_pb2.Project]]:
        if ids is None:
            candidates = self._projects.values()
        else:
            candidates = [s for s in (self._projects.get(i) for i in set(ids)) if s is not None]
        active = [s for s in candidates if s.value.state == project_pb2.Project.ACTIVE]
        return sorted(active, key=lambda s: s.name)

    def _read_inputs(self) -> tuple[tuple[Template, ...], dict[str, str]]:
        templates = read_templates(self._cfg.templates_dir)
        digest = templates_digest(templates)
        if digest != self._templates_digest:
            log.info(
                "cluster resource templates in %s: %s",
                self._cfg.templates_dir,
                ", ".join(t.name for t in templates) or "none",
            )
            self._templates_digest = digest
        return templates, config_data(self._cfg)

    async def _sync_one(
        self,
        target: Target,
        stored: Stored[project_pb2.Project],
        domain: str,
        templates: tuple[Template, ...],
        common: dict[str, str],
        shared_error: str,
        force: bool,
    ) -> Outcome:
        project = stored.value.id
        key = (target.name, project, domain)
        namespace = self.namespace(project, domain)
        if target.unavailable:
            return Outcome(project, domain, namespace, "skipped", target.unavailable, target.name)
        try:
            if shared_error:
                raise ClusterResourceError(shared_error)
            matching = self._attributes.effective(CLUSTER_RESOURCE, project, domain)
            attribute = dict(matching.cluster_resource_attributes.attributes) if matching else {}
            values = variables_for(
                project=project,
                domain=domain,
                namespace=namespace,
                attribute=attribute,
                domain_data=self._cfg.custom_data.get(domain, {}),
                common_data=common,
                cluster_data=target.template_data,
                cluster=target.name,
            )
            objects = render(templates, values)
            digest = objects_digest(namespace, objects)
            last = self._applied.get(key)
            fresh = last is not None and self._clock() - last[1] < self._cfg.reapply_seconds
            if not force and fresh and last is not None and last[0] == digest:
                return Outcome(project, domain, namespace, "unchanged", cluster=target.name)
            # The namespace handler makes it too; a new project's objects must not wait for it.
            await reconcile_project_namespaces(
                target.http, stored.value, [domain], self._namespace_template
            )
            await asyncio.to_thread(self._apply, target, namespace, objects)
        except Exception as exc:  # noqa: BLE001 - one project-domain must not stop the others
            unreachable = unavailable_reason(exc)
            if unreachable is not None:
                self._targets.mark_unavailable(target, unreachable)
                return Outcome(project, domain, namespace, "skipped", unreachable, target.name)
            message = str(exc) if isinstance(exc, ClusterResourceError) else repr(exc)
            await self._failed(target, stored, domain, namespace, message)
            return Outcome(project, domain, namespace, "failed", message, target.name)
        changed = last is None or last[0] != digest
        self._applied[key] = (digest, self._clock())
        if self._errors.pop(key, None) is not None:
            where = _where(target, domain)
            await self._report(stored, False, "ClusterResourcesApplied", f"{where}: applied")
        log.log(
            logging.INFO if changed else logging.DEBUG,
            "cluster resources of %s/%s: applied %d object(s) in %s%s",
            project,
            domain,
            len(objects),
            namespace,
            f" of cluster {target.name}" if target.name else "",
        )
        return Outcome(project, domain, namespace, "applied", cluster=target.name, changed=changed)

    def _apply(self, target: Target, namespace: str, objects: list[dict[str, Any]]) -> None:
        mapper = self._mappers.setdefault(target.name, Mapper(target.api))
        apply_objects(target.api, mapper, namespace, objects)

    async def _failed(
        self,
        target: Target,
        stored: Stored[project_pb2.Project],
        domain: str,
        namespace: str,
        message: str,
    ) -> None:
        key = (target.name, stored.value.id, domain)
        self._applied.pop(key, None)
        if self._errors.get(key) == message:
            log.debug("cluster resources of %s/%s still failing: %s", *key[1:], message)
            return
        self._errors[key] = message
        log.warning(
            "cluster resources of %s/%s (namespace %s%s): %s",
            *key[1:],
            namespace,
            f" of cluster {target.name}" if target.name else "",
            message,
        )
        where = _where(target, domain)
        await self._report(stored, True, "ClusterResourcesFailed", f"{where}: {message}")

    async def _report(
        self, stored: Stored[project_pb2.Project], warning: bool, reason: str, message: str
    ) -> None:
        """A core/v1 Event on the Project object (``kubectl describe projects <id>``)."""
        involved = Involved(
            crds.PROJECT.api_version,
            crds.PROJECT.kind,
            stored.name,
            self._store_namespace,
            stored.uid,
        )
        try:
            await asyncio.to_thread(
                post_event,
                self._api,
                involved,
                warning=warning,
                reason=reason,
                message=message,
                component=EVENT_COMPONENT,
            )
        except Exception as exc:  # noqa: BLE001 - reporting must not break the pass
            log.warning("cannot post an Event on project %s: %s", stored.name, exc)


def _where(target: Target, domain: str) -> str:
    """How an Event on the Project names the project-domain (and its cluster)."""
    return f"cluster {target.name}, {domain}" if target.name else domain
