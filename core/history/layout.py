"""Where history files live and what describes one (docs/storage.md, "History").

Hive-style partitions, so an external engine reads the same files (``hive_partitioning``):

    <storage.prefix>/history/v1/<table>/project=<p>/domain=<d>/month=<YYYY-MM>/<file id>.parquet

``month`` is the month (UTC) of the execution's ``created_at``, also for its node executions,
task executions and signals; ``none`` when the execution has no creation time. Partition values
are percent-encoded (Hive's escaping) and the partition keys are not columns of the files (the
files carry ``execution_project`` / ``execution_domain``), which BigQuery requires.
A file id starts with its UTC write time, so names sort by age.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, unquote

from flyteadmin.core.names import object_name

ROOT = ("history", "v1")
NO_MONTH = "none"
SUFFIX = ".parquet"


class Partition(NamedTuple):
    table: str
    project: str
    domain: str
    month: str


def month_of(created_at: dt.datetime | None) -> str:
    return NO_MONTH if created_at is None else created_at.astimezone(dt.UTC).strftime("%Y-%m")


def new_file_id(now: dt.datetime) -> str:
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}"


def path_parts(partition: Partition, file_id: str) -> tuple[str, ...]:
    """The object path below ``storage.prefix`` (give it to ``BlobStore.uri_for``)."""
    return (
        *ROOT,
        partition.table,
        f"project={quote(partition.project, safe='')}",
        f"domain={quote(partition.domain, safe='')}",
        f"month={quote(partition.month, safe='')}",
        file_id + SUFFIX,
    )


def parse_uri(uri: str) -> tuple[Partition, str]:
    """(partition, file id) of a history file URI; ValueError if it is not one."""
    marker = "/" + "/".join(ROOT) + "/"
    _, found, rest = uri.partition(marker)
    parts = rest.split("/")
    if not found or len(parts) != 5 or not parts[4].endswith(SUFFIX):
        raise ValueError(f"not a history file URI: {uri}")
    values = []
    for part, key in zip(parts[1:4], ("project", "domain", "month"), strict=True):
        name, eq, value = part.partition("=")
        if name != key or not eq:
            raise ValueError(f"not a history file URI: {uri}")
        values.append(unquote(value))
    return Partition(parts[0], *values), parts[4].removesuffix(SUFFIX)


@dataclass(frozen=True)
class FileFacts:
    """What a file says about itself (its footer and bytes)."""

    rows: int
    bytes: int
    sha256: str  # hex digest of the file's bytes (the local cache is keyed by it)
    min_created_at: dt.datetime | None  # of the rows' created_at (None: no row has one)
    max_created_at: dt.datetime | None


@dataclass(frozen=True)
class HistoryFile:
    """One verified history file in the blob store."""

    uri: str
    table: str
    project: str
    domain: str
    month: str
    rows: int
    bytes: int
    sha256: str  # hex digest of the file's bytes (the local cache is keyed by it)
    min_created_at: dt.datetime | None  # of the rows' created_at (None: no row has one)
    max_created_at: dt.datetime | None
    execution_names: tuple[str, ...] = ()
    """Executions (of this project and domain) with rows in the file, sorted; empty for
    compaction output (it only merges files of finished archives)."""

    @classmethod
    def of(
        cls, uri: str, partition: Partition, facts: FileFacts, execution_names: tuple[str, ...] = ()
    ) -> HistoryFile:
        return cls(
            uri=uri,
            table=partition.table,
            project=partition.project,
            domain=partition.domain,
            month=partition.month,
            rows=facts.rows,
            bytes=facts.bytes,
            sha256=facts.sha256,
            min_created_at=facts.min_created_at,
            max_created_at=facts.max_created_at,
            execution_names=execution_names,
        )

    @property
    def partition(self) -> Partition:
        return Partition(self.table, self.project, self.domain, self.month)

    @property
    def segment_name(self) -> str:
        return segment_name(self.uri)


def segment_name(uri: str) -> str:
    """The HistorySegment object registering the file at ``uri``: derived from the URI, so
    registering a file twice is the same object."""
    partition, file_id = parse_uri(uri)
    table = partition.table.replace("_executions", "").replace("executions", "exec")
    return object_name(
        ["h", table, partition.project, partition.domain, partition.month, file_id], uri
    )
