"""Protobuf Timestamps, aware UTC datetimes and the RFC 3339 text kept in custom resources.

An unset Timestamp (zero seconds and nanos) means "not yet" everywhere in flyteadmin's protos,
so the readers below give None for it.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2


def stamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(moment)
    return out


def now_stamp() -> timestamp_pb2.Timestamp:
    return stamp(dt.datetime.now(dt.UTC))


def stamp_datetime(value: timestamp_pb2.Timestamp) -> dt.datetime | None:
    if not value.seconds and not value.nanos:
        return None
    return value.ToDatetime(tzinfo=dt.UTC)


def stamp_text(value: timestamp_pb2.Timestamp) -> str | None:
    """``2024-05-01T12:00:10.5Z`` (microseconds when there are any), or None when unset."""
    moment = stamp_datetime(value)
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def time_text(moment: dt.datetime) -> str:
    """An aware datetime as RFC 3339 text in UTC (microseconds when there are any)."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str | None) -> dt.datetime | None:
    """RFC 3339 text (as ``time_text`` writes it) as an aware UTC datetime; None for none."""
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
