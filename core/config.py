"""Configuration: a tree of frozen dataclasses, read from one YAML file plus environment overrides.

Every field has a default that runs locally without edits. The YAML mirrors the tree
(``server: {grpc_port: 8089}``); an environment variable ``FLYTEADMIN__SERVER__GRPC_PORT=9000``
overrides one leaf (``__`` separates levels; values are parsed as YAML, so ``[a, b]`` is a list).
Settings are passed explicitly to whatever needs them; there is no global registry.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flyteadmin.core.event_loop import LOOPS

ENV_PREFIX = "FLYTEADMIN__"
THREAD_PINNING = ("auto", "always", "never")  # server.thread_pinning


@dataclass(frozen=True)
class Domain:
    id: str
    name: str


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    """Address the gRPC and HTTP ports bind to; in a cluster the chart sets 0.0.0.0."""
    grpc_port: int = 8089
    http_port: int = 8088
    grpc_reflection: bool = True
    workers: int = 1
    """API-server processes sharing the ports (one Python process uses at most one core);
    0 means one per core (api_server/workers.py)."""
    thread_pinning: str = "auto"
    """Keep each API-server process's Python threads on one CPU, grpc's own threads free
    (api_server/affinity.py): `always`, `never`, or `auto` (pinned in `flyteadmin dev`, which
    owns its machine; not in `flyteadmin serve`, which may share a node's CPUs with other pods).
    `always` where the pod has CPUs of its own (Guaranteed QoS, static CPU manager policy)."""
    cors_allowed_origins: tuple[str, ...] = ("*",)
    """Origins allowed by CORS; `*` allows any (the exact origin is echoed for credentials)."""
    max_message_bytes: int = 64 * 1024 * 1024
    """Largest request and response: gRPC messages and HTTP bodies. A larger request is refused
    with RESOURCE_EXHAUSTED (HTTP 413) naming this limit; anything smaller that is valid is
    stored (large closures in the blob store)."""

    def __post_init__(self) -> None:
        if self.thread_pinning not in THREAD_PINNING:
            raise ConfigError(
                f"server.thread_pinning: expected one of {THREAD_PINNING}, "
                f"got {self.thread_pinning!r}"
            )


@dataclass(frozen=True)
class KubernetesSettings:
    kubeconfig: str = ""
    """Path of a kubeconfig; empty means in-cluster config, else $KUBECONFIG or ~/.kube/config."""
    namespace: str = "flyteadmin"
    """Namespace holding every Flyte custom resource (projects, tasks, executions, ...)."""
    api_connections: int = 16
    """Concurrent connections for writes to the Kubernetes API."""
    cache_sync_timeout_seconds: float = 60.0
    """How long start-up waits for the watch caches' first list."""


@dataclass(frozen=True)
class OperatorSettings:
    namespace_template: str = "{{ project }}-{{ domain }}"
    """Namespace of each project-domain; `{{ project }}` and `{{ domain }}` are replaced."""
    peering: str = ""
    """Kopf peering name; empty runs standalone (no peering CRDs). Peered operators of equal
    priority pause when they see each other: a guard against accidental doubles, not HA."""
    resync_seconds: float = 60.0
    """Periodic re-check of every project's namespaces and every execution's FlyteWorkflow
    object, on top of the watch events (which Kopf does not retry)."""
    flyteworkflow_retention_seconds: float = 3600.0
    """How long a finished execution keeps its FlyteWorkflow object before the operator deletes
    it (propeller's finalizer still holds it until propeller lets go)."""
    namespaces: str = "eager"
    """When project-domain namespaces are made: `eager` (when a project is registered, and
    kept by the resync, like flyteadmin's cluster-resource sync) or `on_first_launch` (when a
    project-domain's first execution is launched: no namespaces for projects that never run
    anything). Cluster-resource templates, when configured, make theirs either way."""

    use_offloaded_workflow_closure: bool = True
    """FlyteWorkflow objects name their workflow closure in the blob store
    (`workflowClosureReference`) instead of carrying the spec and task templates: an object a
    third the size, which kube-apiserver decodes, stores and field-tracks at every one of
    propeller's updates. Propeller (1.10 or later) reads it with its storage client, so it needs
    read access to `storage.bucket`. flyteadmin's `useOffloadedWorkflowClosure`, off there."""
    use_offloaded_inputs: bool = True
    """FlyteWorkflow objects name the execution's inputs in the blob store (`offloadedInputs`)
    instead of carrying them, so inputs of any size stay out of etcd. Needs propeller 1.14 or
    later and read access to `storage.bucket`. flyteadmin's `useOffloadedInputs`."""

    namespace_writes_per_second: float = 20.0
    """Most namespace creates and label patches the operator makes per second (0: no limit),
    like kube-controller-manager's `--kube-api-qps` (20): a burst of registered projects then
    gets its namespaces over the following minutes instead of taking kube-apiserver from the
    API's own calls. A single project's namespaces are made at once (a burst of that size is
    allowed). A launch that needs its namespace is never held back."""

    def __post_init__(self) -> None:
        if self.namespace_writes_per_second < 0:
            raise ConfigError("operator.namespace_writes_per_second must not be negative")
        if self.namespaces not in ("eager", "on_first_launch"):
            raise ConfigError(
                "operator.namespaces: expected 'eager' or 'on_first_launch', "
                f"got {self.namespaces!r}"
            )


@dataclass(frozen=True)
class StorageSettings:
    """The blob store (GCS, or a GCS emulator): payloads too large for a custom resource."""

    bucket: str = "flyteadmin"
    """Bucket holding the control plane's blobs (it must exist)."""
    prefix: str = "metadata"
    """Object-name prefix of every blob the control plane writes (`gs://<bucket>/<prefix>/...`)."""
    endpoint: str = ""
    """JSON API endpoint of a GCS emulator (e.g. `http://127.0.0.1:9023`), used anonymously;
    empty means real GCS."""
    public_endpoint: str = ""
    """Scheme and host that signed URLs point at, as clients reach the store; empty means
    `endpoint`, or https://storage.googleapis.com for real GCS."""
    credentials_file: str = ""
    """Service-account JSON key: signs URLs and, for real GCS, authenticates. Empty means
    application default credentials (which sign only if they are a key file)."""
    project: str = ""
    """Google Cloud project of the client; empty means the credentials' project."""
    inline_threshold_bytes: int = 65536
    """Payloads larger than this go to the blob store; smaller ones stay in the resource."""


@dataclass(frozen=True)
class EtcdSettings:
    """What the control plane may fill of etcd (core/budget.py, docs/storage.md). Shares are
    of `quota_bytes` and apply to the estimate of what the control plane holds there."""

    quota_bytes: int = 2 * 1024**3
    """etcd's `--quota-backend-bytes` (2 GiB by default, 8 GiB at most)."""
    archive_above: float = 0.3
    """Above this share, finished executions move to history before their retention is over."""
    refuse_new_above: float = 0.45
    """Above this share, new work (executions, projects, registrations) is refused with
    RESOURCE_EXHAUSTED; running executions still record their progress."""
    refuse_all_above: float = 0.6
    """Above this share, every write but a delete is refused."""
    compaction_interval_seconds: float = 300.0
    """How long etcd keeps old revisions: kube-apiserver's `--etcd-compaction-interval`."""
    object_overhead_bytes: int = 1024
    """What etcd stores per object and per revision beyond the object's JSON."""
    read_database_size: bool = True
    """Read kube-apiserver's metrics, when allowed: etcd's database file size (reported), how
    many FlyteWorkflow objects it holds (counted in the estimate, see below), and the size of the
    kinds the operator does not watch (task and description versions; docs/storage.md)."""
    flyteworkflow_bytes: int = 16384
    """What one FlyteWorkflow object costs etcd, with the revisions flytepropeller writes while
    it runs. These objects live in project namespaces, outside the watch caches, so they are
    counted as kube-apiserver's object count times this."""

    def __post_init__(self) -> None:
        shares = (self.archive_above, self.refuse_new_above, self.refuse_all_above)
        if not 0 < shares[0] <= shares[1] <= shares[2] < 1:
            raise ConfigError(
                "etcd: expected 0 < archive_above <= refuse_new_above <= refuse_all_above < 1, "
                f"got {shares}"
            )


@dataclass(frozen=True)
class JournalSettings:
    """The event journal (core/events/journal.py, docs/event-journal.md): the states that node
    and task events produce are written in batches, and into their own objects shortly after."""

    enabled: bool = True
    """Off: every event is one write of its object, as before."""
    fold_delay_seconds: float = 2.0
    """A state that is not terminal is written into its object this long after the object's
    oldest unwritten state (a terminal one at once), so that a short node's QUEUED, RUNNING
    and SUCCEEDED become one write."""
    orphan_seconds: float = 30.0
    """Batches of a process that ended without folding them are folded by any API-server
    process once they are this old."""
    max_batch_records: int = 256
    max_batch_bytes: int = 512 * 1024
    max_unfolded: int = 20000
    """Above this many states waiting for their fold in one process, events are written into
    their objects directly (back-pressure: slower, nothing lost)."""

    def __post_init__(self) -> None:
        if self.max_batch_records < 1 or self.max_batch_bytes < 1024:
            raise ConfigError("journal: max_batch_records >= 1 and max_batch_bytes >= 1024")


@dataclass(frozen=True)
class ArchiveSettings:
    """Moving finished executions out of etcd into history (operator/archiver.py)."""

    enabled: bool = True
    retention_seconds: float = 86400.0
    """A finished execution stays in etcd this long after it ended, then moves to history."""
    interval_seconds: float = 10.0
    """How often the archiver looks for executions to move."""
    batch_executions: int = 500
    """Executions moved per history segment at most."""


@dataclass(frozen=True)
class TaskResourceSet:
    """Quantity strings per resource; "" (or a zero quantity) means not set."""

    cpu: str = ""
    memory: str = ""
    gpu: str = ""
    ephemeral_storage: str = ""


def _default_task_resource_defaults() -> TaskResourceSet:
    return TaskResourceSet(cpu="2", memory="200Mi")


def _default_task_resource_limits() -> TaskResourceSet:
    return TaskResourceSet(cpu="2", memory="1Gi", gpu="1")


@dataclass(frozen=True)
class TaskResourceSettings:
    """flyteadmin's ``task_resources``: what a task gets when it asks for nothing, and the most
    it may ask for. A TASK_RESOURCE matchable attribute overrides either, per project/domain."""

    defaults: TaskResourceSet = field(default_factory=_default_task_resource_defaults)
    limits: TaskResourceSet = field(default_factory=_default_task_resource_limits)


@dataclass(frozen=True)
class TaskTypeScope:
    """Where a whitelisted task type may be used; "" matches every project (or domain)."""

    project: str = ""
    domain: str = ""


@dataclass(frozen=True)
class RegistrationSettings:
    max_workflow_nodes: int = 100
    """Nodes of a workflow, not counting start and end (0: no limit)."""
    workflow_size_limit: str = ""
    """A Kubernetes quantity (e.g. 10Mi) compared with the serialized closure ("": no limit)."""
    task_type_whitelist: dict[str, tuple[TaskTypeScope, ...]] = field(default_factory=dict)
    """Task type -> the project/domain scopes allowed to register it; unlisted types (or an
    empty list) are allowed everywhere."""


@dataclass(frozen=True)
class ExecutionDefaults:
    """Application-level execution defaults (flyteadmin's `flyteadmin.maxParallelism`, ...): the
    last source of an execution's WorkflowExecutionConfig, and what GetProjectAttributes shows
    for WORKFLOW_EXECUTION_CONFIG (spec §5.2, §8)."""

    max_parallelism: int = 25
    overwrite_cache: bool = False
    interruptible: bool = False
    """Only `true` has an effect: false would override every workflow's own setting."""
    raw_output_prefix: str = ""
    """Where tasks write raw outputs (flyteadmin's `outputLocationPrefix`); empty: unset."""
    k8s_service_account: str = ""
    assumable_iam_role: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    envs: dict[str, str] = field(default_factory=dict)
    """Environment variables of every execution (not shown by GetProjectAttributes)."""
    max_inline_data_bytes: int = 2 * 1024 * 1024
    """GetExecutionData inlines inputs and outputs up to this size (flyteadmin's
    remoteData.maxSizeInBytes, 2 MiB)."""
    retry_dedupe_seconds: float = 0.0
    """Opt-in (0: off, as flyteadmin: every CreateExecution without a name starts its own
    execution). With N > 0, one without a name that repeats, byte for byte and from the same
    caller, one that succeeded (or is in flight) within N seconds returns that execution
    instead: a client's retry after a lost answer starts nothing new, but neither does a
    script that deliberately launches the same thing twice. Clients that must never
    duplicate should name their executions (a repeat is then AlreadyExists)."""


@dataclass(frozen=True)
class DataProxyUploadSettings:
    max_expires_in_seconds: int = 3600
    """Longest lifetime a client may ask of an upload URL; also the default."""
    default_file_name_length: int = 20
    """Length of the random file name given to an upload that names no file."""
    storage_prefix: str = "uploads"
    """Uploads go to `gs://<bucket>/<storage.prefix>/<storage_prefix>/<project>/<domain>/...`."""


@dataclass(frozen=True)
class DataProxyDownloadSettings:
    max_expires_in_seconds: int = 3600
    """Longest lifetime a client may ask of a download URL; also the default."""


@dataclass(frozen=True)
class DataProxySettings:
    """flyteadmin's `server.dataProxy`: signed URLs for uploads (fast registration, input
    files) and downloads."""

    upload: DataProxyUploadSettings = field(default_factory=DataProxyUploadSettings)
    download: DataProxyDownloadSettings = field(default_factory=DataProxyDownloadSettings)


@dataclass(frozen=True)
class AuthSettings:
    """Authentication of callers (docs/auth.md)."""

    mode: str = "off"
    """`off` (every call anonymous), `self` (the built-in authorization server) or `external`
    (tokens from an external OpenID Connect provider)."""
    public_url: str = ""
    """Base URL clients reach the HTTP port at: the metadata's endpoints point there, and it is
    an accepted audience. Empty: http://<server.host>:<server.http_port>."""
    issuer: str = ""
    """`self`: the `iss` of the tokens we sign (empty: public_url). `external`: the provider's
    issuer URL (required); tokens must carry exactly this `iss`."""
    audiences: tuple[str, ...] = ()
    """Accepted `aud` values besides public_url (and, for `self`, the issuer). `self` signs
    tokens for the first one, else for the issuer."""
    required_scope: str = "all"
    """Scope every authenticated call needs (a token with neither scopes nor client_id passes)."""
    header: str = "flyte-authorization"
    """Metadata/header carrying `Bearer <token>` besides `authorization`; clients learn it from
    GetPublicClientConfig (authorization_metadata_key)."""
    secrets_dir: str = "/etc/flyteadmin/auth"
    """Where the auth Secret is mounted; relative file names below are resolved in it."""
    signing_key_file: str = "token_rsa_key.pem"
    """`self`: RSA private key (PEM) that signs tokens."""
    old_signing_key_file: str = "token_rsa_key_old.pem"
    """`self`: the previous key, still accepted for verification while present (rotation)."""
    clients_file: str = "clients.yaml"
    """`self`: YAML mapping client id -> hashed secret (`flyteadmin auth hash-secret`), read if
    present; merged with `clients`."""
    clients: dict[str, str] = field(default_factory=dict)
    """`self`: client id -> hashed secret of the confidential clients (client_credentials)."""
    token_lifetime_seconds: int = 1800
    """`self`: lifetime of the access tokens we sign."""
    refresh_token_lifetime_seconds: int = 3600
    """`self`: lifetime of the refresh tokens of user logins."""
    login_issuer: str = ""
    """`self`: OpenID Connect provider users log in with, for the authorization-code (PKCE) and
    device flows; empty: only the client-credentials grant is served."""
    login_client_id: str = ""
    """`self`: our client id at that provider (its redirect URI: <public_url>/callback)."""
    login_client_secret_file: str = "login_client_secret"
    """`self`: file holding our client secret at that provider."""
    login_scopes: tuple[str, ...] = ("openid", "profile", "email")
    """`self`: scopes asked of that provider."""
    device_code_lifetime_seconds: int = 600
    """`self`: how long a device-flow login may take."""
    public_client_id: str = "flytectl"
    """GetPublicClientConfig: client id of interactive (PKCE) clients."""
    redirect_uri: str = "http://localhost:53593/callback"
    """GetPublicClientConfig: redirect URI of interactive clients."""
    scopes: tuple[str, ...] = ("all",)
    """GetPublicClientConfig: the scopes clients ask for."""
    client_audience: str = ""
    """GetPublicClientConfig: the audience clients ask for (some external providers need it)."""
    jwks_url: str = ""
    """`external`: JWKS of the provider; empty: the `jwks_uri` of
    <issuer>/.well-known/openid-configuration."""
    metadata_url: str = ""
    """`external`: document GetOAuth2Metadata returns; empty:
    <issuer>/.well-known/oauth-authorization-server."""
    authorization: str = "off"
    """`off`: every authenticated caller may do everything; `kubernetes`: each project-scoped call
    is checked with a SubjectAccessReview in the project-domain namespace (docs/auth.md)."""
    user_claim: str = "sub"
    """`kubernetes` authorization: claim naming the Kubernetes user."""
    user_prefix: str = ""
    """Prepended to that user name (e.g. `flyte:`), to keep it apart from cluster users."""
    groups_claim: str = "groups"
    """Claim listing the caller's groups (a list, or one string)."""
    group_prefix: str = ""
    """Prepended to each group name."""
    decision_cache_seconds: float = 10.0
    """How long an access decision is reused."""


@dataclass(frozen=True)
class ClusterResourceSettings:
    """Kubernetes objects rendered from templates for every project-domain
    (docs/cluster-resources.md)."""

    templates_dir: str = ""
    """Directory of YAML templates (`*.yaml`, `*.yml`); empty: no cluster resources are managed."""
    resync_seconds: float = 60.0
    """Each pass renders every project-domain and applies what changed (templates, data, new
    projects); attribute changes are applied at once, between passes."""
    reapply_seconds: float = 600.0
    """Unchanged objects are applied again once their last apply is this old, which restores
    objects deleted or edited by hand (0: every pass applies everything)."""
    custom_data: dict[str, dict[str, str]] = field(default_factory=dict)
    """Domain id -> template variables for that domain (flyteadmin's customData); a
    CLUSTER_RESOURCE attribute with the same key wins."""
    template_data: dict[str, str] = field(default_factory=dict)
    """Template variables for every domain (flyteadmin's templateData); custom_data wins."""
    template_data_files: dict[str, str] = field(default_factory=dict)
    """Template variable -> file whose content is its value, read at each pass (e.g. a mounted
    Secret); one trailing newline is dropped. Same precedence as template_data."""


@dataclass(frozen=True)
class ScheduleSettings:
    """Launch-plan schedules fired by the operator (docs/schedules.md)."""

    enabled: bool = True
    tick_seconds: float = 10.0
    """How often active launch plans are re-read; a fire time due sooner wakes the loop then."""
    max_catch_up: int = 10
    """Most past-due times fired per launch plan at once (after downtime): the latest ones;
    older ones are skipped. 0: no limit (flyteadmin's behaviour)."""
    principal: str = "flyte-scheduler"
    """Principal recorded on scheduled executions (their `metadata.principal`)."""


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server notifications are sent through."""

    host: str = ""
    """Empty: no SMTP sender (a kind routed to SMTP is then a start-up error)."""
    port: int = 25
    tls: str = "none"
    """`none`, `starttls` (upgrade a plain connection) or `ssl` (TLS from the start, e.g. 465)."""
    username: str = ""
    """Login when set (with `password`, e.g. FLYTEADMIN__NOTIFICATIONS__SMTP__PASSWORD from a
    Secret)."""
    password: str = ""
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class WebhookSettings:
    """An HTTP endpoint that gets each notification as a JSON POST (e.g. a Slack incoming
    webhook: the payload's `text` is the subject and body)."""

    url: str = ""
    """Empty: no webhook."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra request headers, e.g. Authorization."""
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class NotificationRoute:
    """Where the notifications of one IDL kind (email, pager_duty, slack) go."""

    smtp: bool = True
    """Mail the notification's recipients through `notifications.smtp` (flyteadmin's only
    transport: Slack and PagerDuty are reached through their email integrations)."""
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    """Also POST it here (empty url: no webhook)."""


@dataclass(frozen=True)
class NotificationRetrySettings:
    attempts: int = 5
    """Tries per notification and sender before it is recorded as failed."""
    initial_backoff_seconds: float = 2.0
    """Wait after the first failure; doubled after each further one."""
    max_backoff_seconds: float = 120.0


_DEFAULT_SUBJECT = 'Notice: Execution "{{ workflow.name }}" has {{ phase }} in "{{ domain }}".'
_DEFAULT_BODY = (
    'Execution "{{ workflow.name }} [{{ name }}]" has {{ phase }} in "{{ domain }}" '
    "(project {{ project }}).{{ error }}"
)


@dataclass(frozen=True)
class NotificationSettings:
    """Execution phase notifications sent by the operator (docs/notifications.md)."""

    enabled: bool = False
    sender: str = "flyte-notifications@localhost"
    """From address of the emails (flyteadmin's `notifications.emailer.sender`)."""
    subject: str = _DEFAULT_SUBJECT
    """Subject template; placeholders `{{ project }}`, `{{ domain }}`, `{{ name }}`,
    `{{ phase }}`, `{{ error }}`, `{{ workflow.project|domain|name|version }}`,
    `{{ launch_plan.project|domain|name|version }}`."""
    body: str = _DEFAULT_BODY
    """Body template (sent as HTML, like flyteadmin); a notification's own `template` wins."""
    max_age_seconds: float = 86400.0
    """Executions that ended longer ago than this are not notified (e.g. after notifications
    are first enabled, or a long operator outage); 0: no limit."""
    max_concurrent: int = 16
    """Deliveries in flight at once."""
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    email: NotificationRoute = field(default_factory=NotificationRoute)
    pager_duty: NotificationRoute = field(default_factory=NotificationRoute)
    slack: NotificationRoute = field(default_factory=NotificationRoute)
    retry: NotificationRetrySettings = field(default_factory=NotificationRetrySettings)


@dataclass(frozen=True)
class MetricsSettings:
    """The metrics port (docs/operations.md): `/metrics`, `/livez` and `/readyz`, never
    authenticated, on an address of its own so the API can require tokens."""

    host: str = ""
    """Bind address; empty: `server.host`."""
    port: int = 10254
    """Port of `flyteadmin serve` and `flyteadmin operator` (0: any free port)."""


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    """Root log level (`--log-level` overrides it)."""
    format: str = "text"
    """`text` (one line per record) or `json` (one JSON object per line)."""
    access_log: bool = True
    """One INFO line per RPC served (logger `flyteadmin.access`): request id, RPC, code,
    duration, project, domain, execution."""
    levels: dict[str, str] = field(default_factory=dict)
    """Logger name -> level, e.g. `{kopf: WARNING, flyteadmin.access: WARNING}`."""


@dataclass(frozen=True)
class TracingSettings:
    """Optional OpenTelemetry tracing of RPCs and Kubernetes calls (the `tracing` extra)."""

    enabled: bool = False
    endpoint: str = ""
    """OTLP/HTTP traces endpoint, e.g. `http://otel-collector:4318/v1/traces`; empty: the
    `OTEL_EXPORTER_OTLP_*` environment, else `http://localhost:4318/v1/traces`."""
    service_name: str = ""
    """`service.name` of the spans; empty: `flyteadmin-<command>`."""
    sample_ratio: float = 1.0
    """Share of traces started here that are kept (a caller's sampling decision wins)."""


@dataclass(frozen=True)
class ExecutionCluster:
    """One data-plane cluster executions can run in (docs/multicluster.md)."""

    name: str = ""
    """Its id: stored on each execution it runs (`system_metadata.execution_cluster`) and the
    `cluster-id` its flytepropeller must send events with."""
    kubeconfig: str = ""
    """Kubeconfig file of the operator's credentials there (e.g. a mounted Secret)."""
    context: str = ""
    """Context of that kubeconfig; empty: its current context."""
    in_cluster: bool = False
    """The control plane's own cluster (the `kubernetes.kubeconfig` connection) instead of a
    kubeconfig."""
    labels: tuple[str, ...] = ()
    """Execution cluster labels it serves (EXECUTION_CLUSTER_LABEL, `execution_cluster_label`)."""
    weight: float = 1.0
    """Relative share among the clusters a choice is made from; 0: only when every candidate
    has 0."""
    enabled: bool = True
    """False: no new executions are placed here; those already here still run, terminate and
    are cleaned up."""
    pools: tuple[str, ...] = ()
    """Cluster pools (`cluster_assignment`) it belongs to."""
    template_data: dict[str, str] = field(default_factory=dict)
    """Cluster-resource template variables for this cluster (over `cluster_resources.template_data`,
    under custom_data and attributes)."""


@dataclass(frozen=True)
class ExecutionClusterSettings:
    """Where executions run: the control plane's own cluster (no clusters listed), or data-plane
    clusters chosen per execution (flyteadmin's `clusters` and `clusterPools` sections)."""

    clusters: tuple[ExecutionCluster, ...] = ()
    default_label: str = ""
    """Label used when neither the execution nor an EXECUTION_CLUSTER_LABEL attribute names one
    that a cluster serves (flyteadmin's `defaultExecutionLabel`); empty: every enabled cluster."""
    pool_assignments: dict[str, str] = field(default_factory=dict)
    """Domain id -> cluster pool of its executions when no CLUSTER_ASSIGNMENT attribute names one
    (flyteadmin's `clusterPools.clusterPoolAssignments`)."""
    probe_seconds: float = 10.0
    """The operator checks an unreachable cluster this often; it resumes launching there as soon
    as one check succeeds."""


@dataclass(frozen=True)
class HistorySettings:
    """Finished executions archived as Parquet files in the blob store and queried with an
    embedded DuckDB (docs/storage.md, "History")."""

    cache_dir: str = ""
    """Local directory of downloaded history files (content-addressed; several processes on
    one host may share it). Empty: `flyteadmin-history` in the system's temporary directory."""
    cache_max_bytes: int = 0
    """Files beyond this size (least recently used first, never one used in the last ten
    minutes) are removed from the cache and downloaded again when needed; 0: no limit."""
    duckdb_memory_limit: str = "512MB"
    """DuckDB's memory limit (its buffer pool; sorts and joins spill to `cache_dir`)."""
    duckdb_threads: int = 2
    """DuckDB's worker threads per query."""
    query_workers: int = 4
    """History queries running at once (each on its own DuckDB cursor, in a thread)."""
    executions_row_group_rows: int = 16384
    """Rows per row group of executions files."""
    children_row_group_rows: int = 8192
    """Rows per row group of node execution, task execution and signal files."""
    zstd_level: int = 3
    """zstd compression level of the files."""
    target_file_bytes: int = 256 * 1024 * 1024
    """Compaction writes files up to about this size."""
    compaction_min_files: int = 8
    """A partition is compacted once it has this many small files."""
    compaction_small_file_bytes: int = 32 * 1024 * 1024
    """Files smaller than this are compaction input."""


def _default_domains() -> tuple[Domain, ...]:
    return tuple(Domain(d, d) for d in ("development", "staging", "production"))


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    etcd: EtcdSettings = field(default_factory=EtcdSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    executions: ExecutionDefaults = field(default_factory=ExecutionDefaults)
    task_resources: TaskResourceSettings = field(default_factory=TaskResourceSettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    data_proxy: DataProxySettings = field(default_factory=DataProxySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    cluster_resources: ClusterResourceSettings = field(default_factory=ClusterResourceSettings)
    schedules: ScheduleSettings = field(default_factory=ScheduleSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    execution_clusters: ExecutionClusterSettings = field(default_factory=ExecutionClusterSettings)
    history: HistorySettings = field(default_factory=HistorySettings)
    domains: tuple[Domain, ...] = field(default_factory=_default_domains)
    """The system-wide domains every project has."""
    event_loop: str = "uvloop"
    """The event loop of every process: `uvloop` or `asyncio` (core/event_loop.py)."""
    freeze_caches: bool = True
    """Keep the loaded watch caches, and what survives each full garbage collection, out of
    Python's collector (core/heap.py): its full passes stay short however large the store.
    `false`: Python's defaults."""

    def __post_init__(self) -> None:
        if self.event_loop not in LOOPS:
            raise ConfigError(f"event_loop: expected one of {LOOPS}, got {self.event_loop!r}")

    def domain_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.domains)


class ConfigError(ValueError):
    pass


class _EnvText(str):
    """An environment variable's value: YAML for a field that is not text (a number, a list),
    the value itself for text, so that `FLYTEADMIN__AUTH__MODE=off` means `off`, not false."""


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Convert a YAML value to the annotated field type, with a clear error."""
    if isinstance(value, _EnvText):
        if tp is str:
            return str(value)
        value = yaml.safe_load(value)
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where)
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        (key_tp, value_tp) = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {
            _convert(key_tp, k, where): _convert(value_tp, v, f"{where}.{k}")
            for k, v in value.items()
        }
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{where}: unsupported type {tp}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return tp(value)
    if tp is str:
        if isinstance(value, bool):  # YAML reads on, off, yes and no as booleans
            raise ConfigError(f"{where}: expected a string, got {value!r}: quote the value")
        if not isinstance(value, str | int | float):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{where}: unsupported type {tp}")


def _build(cls: Any, data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {sorted(unknown)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}".lstrip(".")) for k, v in data.items()}
    return cls(**kwargs)


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (optional) and apply ``FLYTEADMIN__A__B=value`` overrides from ``env``."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = loaded
    for key, raw in sorted(env.items()):
        if key.startswith(ENV_PREFIX):
            _set_path(data, key[len(ENV_PREFIX) :].lower().split("__"), _EnvText(raw))
    settings: Settings = _build(Settings, data, "")
    return settings


def dump_defaults() -> str:
    """The default configuration as YAML (``flyteadmin config``), the documented reference."""
    return yaml.safe_dump(_plain(Settings()), sort_keys=False)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
