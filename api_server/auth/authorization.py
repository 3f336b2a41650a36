"""Per-project authorization through Kubernetes RBAC (`auth.authorization: kubernetes`).

``RULES`` maps every RPC to the custom resource (plural, group flyteadmin.io) and verb it is
checked as, and to where its project and domain are in the request. The registry wrapper asks
``core.auth.access`` whether the caller may do that in the project-domain namespace; a denial is
PERMISSION_DENIED naming the project and verb. Both doors serve the wrapped registry, so gRPC
and HTTP are checked alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from flyteadmin.api_server.auth.authentication import count_failure
from flyteadmin.api_server.context import CallContext, Handler, Response
from flyteadmin.core import crds
from flyteadmin.core.auth.access import AccessReviewer, subject_of
from flyteadmin.core.auth.runtime import Auth
from flyteadmin.core.auth.tokens import unauthenticated
from flyteadmin.core.backend import Backend
from flyteadmin.core.config import AuthSettings
from flyteadmin.core.errors import AdminError, Code, invalid_argument
from flyteadmin.core.namespaces import namespace_for

# Where a rule finds the project (and domain): a dotted path to a message with `project` and
# `domain` fields ("" is the request itself), or a function of the request.
Locator = str | Callable[[Message], tuple[str, str]]

DOMAIN, PROJECT, CLUSTER, ANYONE = "domain", "project", "cluster", "anyone"


@dataclass(frozen=True)
class Rule:
    resource: str = ""
    verb: str = ""
    scope: str = ANYONE  # DOMAIN: one namespace; PROJECT: the project's domains; CLUSTER: none
    at: Locator = ""  # DOMAIN: the message holding project and domain; PROJECT: the project field


def D(kind: crds.Kind, verb: str, at: Locator = "") -> Rule:
    return Rule(kind.plural, verb, DOMAIN, at)


def P(kind: crds.Kind, verb: str, at: str) -> Rule:
    return Rule(kind.plural, verb, PROJECT, at)


def C(kind: crds.Kind, verb: str) -> Rule:
    return Rule(kind.plural, verb, CLUSTER)


OPEN = Rule()


def _flyte_url(request: Message) -> tuple[str, str]:
    """GetData: flyte://v1/<project>/<domain>/..."""
    parts = getattr(request, "flyte_url", "").removeprefix("flyte://v1/").split("/")
    return (parts[0], parts[1]) if len(parts) > 2 else ("", "")


T, W, LP, E = crds.TASK, crds.WORKFLOW, crds.LAUNCH_PLAN, crds.EXECUTION
NE, TE, NAMED, ATTR = (
    crds.NODE_EXECUTION,
    crds.TASK_EXECUTION,
    crds.NAMED_ENTITY,
    crds.MATCHABLE_ATTRIBUTES,
)
DESC, SIG, PROJ = crds.DESCRIPTION_ENTITY, crds.SIGNAL, crds.PROJECT
ADMIN = "/flyteidl.service.AdminService/"
DATA = "/flyteidl.service.DataProxyService/"
SIGNALS = "/flyteidl.service.SignalService/"
NODE_OF_TASK = "node_execution_id.execution_id"

RULES: dict[str, Rule] = {
    ADMIN + "CreateTask": D(T, "create", "id"),
    ADMIN + "GetTask": D(T, "get", "id"),
    ADMIN + "ListTaskIds": D(T, "list"),
    ADMIN + "ListTasks": D(T, "list", "id"),
    ADMIN + "CreateWorkflow": D(W, "create", "id"),
    ADMIN + "GetWorkflow": D(W, "get", "id"),
    ADMIN + "ListWorkflowIds": D(W, "list"),
    ADMIN + "ListWorkflows": D(W, "list", "id"),
    ADMIN + "CreateLaunchPlan": D(LP, "create", "id"),
    ADMIN + "GetLaunchPlan": D(LP, "get", "id"),
    ADMIN + "GetActiveLaunchPlan": D(LP, "get", "id"),
    ADMIN + "ListActiveLaunchPlans": D(LP, "list"),
    ADMIN + "ListLaunchPlanIds": D(LP, "list"),
    ADMIN + "ListLaunchPlans": D(LP, "list", "id"),
    ADMIN + "UpdateLaunchPlan": D(LP, "update", "id"),
    ADMIN + "CreateExecution": D(E, "create"),
    ADMIN + "RelaunchExecution": D(E, "create", "id"),
    ADMIN + "RecoverExecution": D(E, "create", "id"),
    ADMIN + "GetExecution": D(E, "get", "id"),
    ADMIN + "UpdateExecution": D(E, "update", "id"),
    ADMIN + "GetExecutionData": D(E, "get", "id"),
    ADMIN + "ListExecutions": D(E, "list", "id"),
    ADMIN + "TerminateExecution": D(E, "delete", "id"),
    ADMIN + "GetExecutionMetrics": D(E, "get", "id"),
    ADMIN + "GetNodeExecution": D(NE, "get", "id.execution_id"),
    ADMIN + "GetDynamicNodeWorkflow": D(NE, "get", "id.execution_id"),
    ADMIN + "ListNodeExecutions": D(NE, "list", "workflow_execution_id"),
    ADMIN + "ListNodeExecutionsForTask": D(NE, "list", "task_execution_id." + NODE_OF_TASK),
    ADMIN + "GetNodeExecutionData": D(NE, "get", "id.execution_id"),
    ADMIN + "GetTaskExecution": D(TE, "get", "id." + NODE_OF_TASK),
    ADMIN + "ListTaskExecutions": D(TE, "list", NODE_OF_TASK),
    ADMIN + "GetTaskExecutionData": D(TE, "get", "id." + NODE_OF_TASK),
    # Events come from flytepropeller: bind its identity to a ClusterRole with these verbs.
    ADMIN + "CreateWorkflowEvent": D(E, "update", "event.execution_id"),
    ADMIN + "CreateNodeEvent": D(NE, "create", "event.id.execution_id"),
    ADMIN + "CreateTaskEvent": D(TE, "create", "event.parent_node_execution_id.execution_id"),
    # A project's namespaces do not exist before it does: registering one is cluster-wide.
    ADMIN + "RegisterProject": C(PROJ, "create"),
    ADMIN + "UpdateProject": P(PROJ, "update", "id"),
    ADMIN + "GetProject": P(PROJ, "get", "id"),
    ADMIN + "ListProjects": OPEN,  # names and descriptions only; clients list them to start
    ADMIN + "GetDomains": OPEN,
    ADMIN + "GetVersion": OPEN,
    ADMIN + "UpdateProjectDomainAttributes": D(ATTR, "update", "attributes"),
    ADMIN + "GetProjectDomainAttributes": D(ATTR, "get"),
    ADMIN + "DeleteProjectDomainAttributes": D(ATTR, "delete"),
    ADMIN + "UpdateProjectAttributes": P(ATTR, "update", "attributes.project"),
    ADMIN + "GetProjectAttributes": P(ATTR, "get", "project"),
    ADMIN + "DeleteProjectAttributes": P(ATTR, "delete", "project"),
    ADMIN + "UpdateWorkflowAttributes": D(ATTR, "update", "attributes"),
    ADMIN + "GetWorkflowAttributes": D(ATTR, "get"),
    ADMIN + "DeleteWorkflowAttributes": D(ATTR, "delete"),
    ADMIN + "ListMatchableAttributes": C(ATTR, "list"),  # spans every project
    ADMIN + "ListNamedEntities": D(NAMED, "list"),
    ADMIN + "GetNamedEntity": D(NAMED, "get", "id"),
    ADMIN + "UpdateNamedEntity": D(NAMED, "update", "id"),
    ADMIN + "GetDescriptionEntity": D(DESC, "get", "id"),
    ADMIN + "ListDescriptionEntities": D(DESC, "list", "id"),
    # Uploads carry code for (fast) registration; downloads read execution data.
    DATA + "CreateUploadLocation": D(T, "create"),
    DATA + "CreateDownloadLocation": C(E, "get"),  # a bare storage URL names no project
    DATA + "CreateDownloadLink": D(E, "get", "node_execution_id.execution_id"),
    DATA + "GetData": D(E, "get", _flyte_url),
    SIGNALS + "GetOrCreateSignal": D(SIG, "create", "id.execution_id"),
    SIGNALS + "ListSignals": D(SIG, "list", "workflow_execution_id"),
    SIGNALS + "SetSignal": D(SIG, "update", "id.execution_id"),
    "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata": OPEN,
    "/flyteidl.service.AuthMetadataService/GetPublicClientConfig": OPEN,
    "/flyteidl.service.IdentityService/UserInfo": OPEN,  # authenticated, about oneself
}


def _walk(message: Message, path: str) -> Message:
    for name in filter(None, path.split(".")):
        message = getattr(message, name)
    return message


def locate(rule: Rule, request: Message) -> tuple[str, str]:
    """(project, domain) of a request under ``rule``; domain is "" for project-wide rules."""
    if callable(rule.at):
        return rule.at(request)
    if rule.scope == PROJECT:
        head, _, field = rule.at.rpartition(".")
        return getattr(_walk(request, head), field), ""
    holder: Any = _walk(request, rule.at)  # an identifier-like message
    return holder.project, holder.domain


class Authorizer:
    def __init__(
        self,
        reviewer: AccessReviewer,
        settings: AuthSettings,
        template: str,
        domains: Sequence[str],
    ) -> None:
        self.reviewer = reviewer
        self.settings = settings
        self.template = template
        self.domains = tuple(domains)

    async def check(self, method: str, rule: Rule, request: Message, ctx: CallContext) -> None:
        if ctx.identity is None:
            raise unauthenticated("authentication is required")
        subject = subject_of(ctx.identity, self.settings)
        if rule.scope == CLUSTER:
            if not await self.reviewer.allowed(subject, "", rule.resource, rule.verb):
                raise AdminError(
                    Code.PERMISSION_DENIED,
                    f"{subject.user} may not {rule.verb} {rule.resource} (cluster-wide)",
                )
            return
        project, domain = locate(rule, request)
        if not project or (rule.scope == DOMAIN and not domain):
            raise invalid_argument("the request must name a project and a domain")
        domains = (domain,) if rule.scope == DOMAIN else self.domains
        decisions = [
            await self.reviewer.allowed(
                subject, namespace_for(self.template, project, d), rule.resource, rule.verb
            )
            for d in domains
        ]
        # Project-wide reads need one of the project's domains; project-wide writes need all.
        reading = rule.verb in ("get", "list")
        if any(decisions) if reading else all(decisions):
            return
        where = f"project {project}" + (f" domain {domain}" if rule.scope == DOMAIN else "")
        raise AdminError(
            Code.PERMISSION_DENIED, f"{subject.user} may not {rule.verb} {rule.resource} in {where}"
        )


def authorize(registry: Mapping[str, Handler], authorizer: Authorizer) -> dict[str, Handler]:
    """The registry with every non-open handler checked first (every RPC must have a rule)."""
    missing = sorted(set(registry) - set(RULES))
    if missing:
        raise ValueError(f"no authorization rule for {missing}")
    wrapped: dict[str, Handler] = {}
    for method, handler in registry.items():
        rule = RULES[method]
        wrapped[method] = handler if rule is OPEN else _guard(method, rule, handler, authorizer)
    return wrapped


def _guard(method: str, rule: Rule, handler: Handler, authorizer: Authorizer) -> Handler:
    async def guarded(request: Message, ctx: CallContext) -> Response:
        try:
            await authorizer.check(method, rule, request, ctx)
        except AdminError as error:
            count_failure(error)
            raise
        return await handler(request, ctx)

    return guarded


def authorizer_for(backend: Backend, auth: Auth) -> Authorizer:
    """Decisions from the backend's Kubernetes API client, in the operator's namespaces."""
    settings = backend.settings
    reviewer = AccessReviewer(backend.http, cache_seconds=auth.settings.decision_cache_seconds)
    return Authorizer(
        reviewer, auth.settings, settings.operator.namespace_template, settings.domain_ids()
    )
