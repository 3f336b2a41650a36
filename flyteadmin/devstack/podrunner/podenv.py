"""A container's environment and argv, computed from the Pod as the kubelet does (pure functions).

``envFrom`` first, then ``env`` in order; ``$(VAR)`` in values, command and args expands to a
variable the container defines (``$$`` escapes), an unknown reference stays as written. Values
come from ``value``, ``valueFrom.fieldRef`` (the downward API's fields), ``resourceFieldRef``,
``secretKeyRef`` and ``configMapKeyRef``. Secrets and ConfigMaps are read through ``lookup``, so
the functions here do no I/O. A missing non-optional source raises ``EnvError``; the kubelet
reports that as ``CreateContainerConfigError`` and retries, and so does the runner.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flyteadmin.core.quantities import parse_quantity

POD_IP = "127.0.0.1"
HOST_IP = "127.0.0.1"

# (kind, namespace, name) -> the object's body, or None when it does not exist.
Lookup = Callable[[str, str, str], dict[str, Any] | None]

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """The container cannot be configured (yet): a missing Secret, key or field."""


def _downward_map(values: Mapping[str, str]) -> str:
    # The downward API's file format for a whole map: sorted key="value" lines.
    return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))


def field_value(pod: dict[str, Any], field_path: str, node_name: str) -> str:
    """The value of a ``fieldRef``'s ``fieldPath``."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIP": HOST_IP,
        "status.hostIPs": HOST_IP,
    }
    if field_path in simple:
        return simple[field_path]
    if field_path in ("metadata.labels", "metadata.annotations"):
        return _downward_map(meta.get(field_path.split(".")[1]) or {})
    match = _SUBSCRIPT.match(field_path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    raise EnvError(f"unsupported fieldRef fieldPath {field_path!r}")


def resource_value(
    pod: dict[str, Any], ref: dict[str, Any], container_name: str, allocatable: Mapping[str, str]
) -> str:
    """A ``resourceFieldRef``: the container's limit or request, divided and rounded up."""
    name = ref.get("containerName") or container_name
    containers = (pod.get("spec") or {}).get("containers") or []
    containers = containers + ((pod.get("spec") or {}).get("initContainers") or [])
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None:
        raise EnvError(f"resourceFieldRef names unknown container {name!r}")
    kind, _, resource = (ref.get("resource") or "").partition(".")
    if kind not in ("limits", "requests") or not resource:
        raise EnvError(f"unsupported resourceFieldRef resource {ref.get('resource')!r}")
    resources = container.get("resources") or {}
    text = (resources.get(kind) or {}).get(resource)
    if text is None and kind == "requests":
        text = (resources.get("limits") or {}).get(resource)
    if text is None:
        text = allocatable.get(resource, "0")  # no limit: the node's allocatable, as k8s does
    divisor = parse_quantity(str(ref.get("divisor") or "1")).value
    value = parse_quantity(str(text)).value / (divisor or 1)
    return str(math.ceil(value))


def _decoded(kind: str, body: dict[str, Any], key: str) -> str | None:
    if kind == "Secret":
        raw = (body.get("data") or {}).get(key)
        return None if raw is None else base64.b64decode(raw).decode("utf-8", errors="replace")
    if key in (body.get("data") or {}):
        return body["data"][key]
    raw = (body.get("binaryData") or {}).get(key)
    return None if raw is None else base64.b64decode(raw).decode("utf-8", errors="replace")


def _key_ref(kind: str, ref: dict[str, Any], namespace: str, lookup: Lookup) -> str | None:
    name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
    body = lookup(kind, namespace, name)
    if body is None:
        if optional:
            return None
        raise EnvError(f'{kind.lower()} "{name}" not found')
    value = _decoded(kind, body, key)
    if value is None and not optional:
        raise EnvError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return value


def _from_sources(pod: dict[str, Any], container: dict[str, Any], lookup: Lookup) -> dict[str, str]:
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = source.get(field)
            if ref is None:
                continue
            body = lookup(kind, namespace, ref.get("name", ""))
            if body is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{kind.lower()} "{ref.get("name")}" not found')
            keys = list(body.get("data") or {}) + list(body.get("binaryData") or {})
            for key in keys:
                env[prefix + key] = _decoded(kind, body, key) or ""
    return env


def container_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    lookup: Lookup,
    *,
    node_name: str,
    allocatable: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables the Pod defines for ``container`` (not the runner's base environment)."""
    namespace = pod["metadata"]["namespace"]
    env = _from_sources(pod, container, lookup)
    for var in container.get("env") or []:
        name = var["name"]
        source = var.get("valueFrom")
        if source is None:
            env[name] = expand(var.get("value") or "", env)
        elif "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"].get("fieldPath", ""), node_name)
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            env[name] = resource_value(pod, ref, container["name"], allocatable or {})
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
            ref = source.get("secretKeyRef") or source.get("configMapKeyRef") or {}
            value = _key_ref(kind, ref, namespace, lookup)
            if value is not None:
                env[name] = value
        else:
            raise EnvError(f"unsupported valueFrom for {name}: {sorted(source)}")
    return env


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` is a literal ``$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env.get(name, text[i : end + 1]))
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def container_argv(container: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    """command + args, expanded. The image's entrypoint is unknown, so without a command the
    args are the whole argv (flytekit's task containers carry ``pyflyte-...`` in args)."""
    argv = [expand(a, env) for a in (container.get("command") or [])]
    argv += [expand(a, env) for a in (container.get("args") or [])]
    if not argv:
        raise ValueError("the container has neither command nor args (its image is ignored here)")
    return argv


def localize_fast_execute(argv: list[str]) -> list[str]:
    """``pyflyte-fast-execute --dest-dir /root ...`` -> ``--dest-dir .``.

    The destination is a folder *inside the image* (``pyflyte register`` defaults to ``/root``);
    here it would be a folder of this machine, shared by every Pod. The Pod's working directory
    is the one place that belongs to this Pod alone, and flytekit puts the destination on
    ``sys.path`` whatever it is.
    """
    if not argv or Path(argv[0]).name != "pyflyte-fast-execute":
        return argv
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--":
            break
        if arg == "--dest-dir" and out[i + 1].startswith("/"):
            out[i + 1] = "."
    return out
