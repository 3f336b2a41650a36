"""The store against the real apiserver: writes, optimistic concurrency, the watch cache."""

from __future__ import annotations

import asyncio

import pytest
from flyteidl.admin import project_pb2
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core import kube
from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.core.errors import AdminError
from flyteadmin.core.store import AlreadyExists, Collection, Conflict, NotFound
from tests.integration.servers import LoopThread
from tests.waiting import eventually as wait_for


def project(pid: str, name: str = "", state=project_pb2.Project.ACTIVE) -> project_pb2.Project:
    return project_pb2.Project(id=pid, name=name or pid, state=state)


class Replica:
    """One API-server replica's view: its own clients, event loop and cache."""

    def __init__(self, kubeconfig, namespace: str) -> None:
        self.api = kube.api_client(str(kubeconfig))
        self.loop = LoopThread()
        self.http = kube.KubeHttp(self.api)
        self.projects = Collection(self.api, namespace, ProjectCodec(), self.http)
        self.projects.add_index("state", lambda p: [p.state])

    def run(self, coro):
        return self.loop.call(coro)

    def __enter__(self) -> Replica:
        self.projects.start()
        assert self.projects.wait_synced(30)
        return self

    def __exit__(self, *exc) -> None:
        self.projects.stop()
        assert self.projects.join(30), "the watch thread did not end"
        self.run(self.http.close())
        self.loop.close()
        self.api.close()


def test_create_is_visible_at_once_and_duplicates_are_refused(kubeconfig, namespace):
    with Replica(kubeconfig, namespace) as r:

        async def scenario():
            stored = await r.projects.create(project("alpha", "Alpha"))
            # Read-your-writes: no waiting for the watch.
            assert r.projects.get("alpha").value.name == "Alpha"
            assert r.projects.get("alpha").resource_version == stored.resource_version
            with pytest.raises(AlreadyExists):
                await r.projects.create(project("alpha", "Other"))
            assert r.projects.get("alpha").value.name == "Alpha"

        r.run(scenario())


def test_update_with_stale_version_conflicts_and_mutate_retries(kubeconfig, namespace):
    with Replica(kubeconfig, namespace) as r:

        async def scenario():
            first = await r.projects.create(project("beta"))
            await r.projects.update(first, project("beta", "Second"))
            with pytest.raises(Conflict):
                await r.projects.update(first, project("beta", "Stale"))
            assert r.projects.get("beta").value.name == "Second"

            # Twenty concurrent read-modify-writes of one object: none is lost.
            def append(p):
                out = project_pb2.Project()
                out.CopyFrom(p)
                out.description += "x"
                return out

            await asyncio.gather(
                *(r.projects.mutate("beta", append, attempts=50) for _ in range(20))
            )
            assert r.projects.get("beta").value.description == "x" * 20

        r.run(scenario())


def test_delete_and_missing_objects(kubeconfig, namespace):
    with Replica(kubeconfig, namespace) as r:

        async def scenario():
            await r.projects.create(project("gamma"))
            await r.projects.delete("gamma")
            assert r.projects.get("gamma") is None
            with pytest.raises(NotFound):
                await r.projects.delete("gamma")
            with pytest.raises(NotFound):
                await r.projects.mutate("gamma", lambda p: p)

        r.run(scenario())


def test_second_replica_sees_writes_through_its_watch(kubeconfig, namespace):
    with Replica(kubeconfig, namespace) as a, Replica(kubeconfig, namespace) as b:
        a.run(a.projects.create(project("delta", "Delta")))
        wait_for(lambda: b.projects.get("delta") is not None)
        b.run(b.projects.mutate("delta", lambda p: project("delta", "Changed by b")))
        wait_for(lambda: a.projects.get("delta").value.name == "Changed by b")
        a.run(a.projects.delete("delta"))
        wait_for(lambda: b.projects.get("delta") is None)


def test_cache_is_rebuilt_from_the_cluster_after_a_restart(kubeconfig, namespace):
    with Replica(kubeconfig, namespace) as r:
        r.run(r.projects.create(project("eps", state=project_pb2.Project.ARCHIVED)))
        r.run(r.projects.create(project("zeta")))
    with Replica(kubeconfig, namespace) as restarted:
        assert {s.name for s in restarted.projects.values()} == {"eps", "zeta"}
        archived = restarted.projects.by_index("state", project_pb2.Project.ARCHIVED)
        assert [s.name for s in archived] == ["eps"]


def test_objects_edited_with_kubectl_style_writes_reach_the_cache(kubeconfig, namespace, kube_api):
    with Replica(kubeconfig, namespace) as r:
        r.run(r.projects.create(project("eta", "Eta")))
        custom = client.CustomObjectsApi(kube_api)
        custom.patch_namespaced_custom_object(
            "flyteadmin.io",
            "v1alpha1",
            namespace,
            "projects",
            "eta",
            {"spec": {"description": "patched outside"}},
        )
        wait_for(lambda: r.projects.get("eta").value.description == "patched outside")


class GoneOnFirstWatch:
    """The Kubernetes client, except that the first watch answers 410 Gone (as after etcd
    compaction): a fault injected at the HTTP-client boundary."""

    def __init__(self, real) -> None:
        self._real = real
        self.lists = 0
        self.gone_sent = False

    def list_namespaced_custom_object(self, *args, **kwargs):
        if kwargs.get("watch"):
            if not self.gone_sent:
                self.gone_sent = True
                raise ApiException(status=410, reason="Gone")
        else:
            self.lists += 1
        return self._real.list_namespaced_custom_object(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_watch_relists_after_410_gone(kubeconfig, namespace, kube_api):
    custom = client.CustomObjectsApi(kube_api)

    def create_directly(pid: str) -> None:
        body = {
            "apiVersion": "flyteadmin.io/v1alpha1",
            "kind": "Project",
            "metadata": {"name": pid},
            "spec": {"id": pid, "state": "ACTIVE"},
        }
        custom.create_namespaced_custom_object(
            "flyteadmin.io", "v1alpha1", namespace, "projects", body
        )

    create_directly("before")
    replica = Replica(kubeconfig, namespace)
    faulty = GoneOnFirstWatch(replica.projects._custom)
    replica.projects._custom = faulty
    with replica as r:
        wait_for(lambda: faulty.gone_sent)
        create_directly("after")
        wait_for(lambda: r.projects.get("after") is not None)
        assert r.projects.get("before") is not None
        assert faulty.lists >= 2  # the 410 made it list again, then watch from the new list


class RefusedWatches:
    """The Kubernetes client, except that every watch is refused with 429 and a long
    Retry-After (as kube-apiserver answers while a new kind's watch cache initialises)."""

    def __init__(self, real) -> None:
        self._real = real
        self.refused = 0

    def list_namespaced_custom_object(self, *args, **kwargs):
        if kwargs.get("watch"):
            self.refused += 1
            error = ApiException(status=429, reason="Too Many Requests")
            error.headers = {"Retry-After": "30"}
            raise error
        return self._real.list_namespaced_custom_object(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_stop_ends_an_idle_watch_thread(kubeconfig, namespace):
    """The thread blocks reading an open watch with nothing to deliver: stop() must wake it
    (a thread left running can abort the process at interpreter exit)."""
    replica = Replica(kubeconfig, namespace)
    with replica as r:
        wait_for(lambda: r.projects._response is not None)
        r.projects.stop()
        assert r.projects.join(10)  # the watch would otherwise block for minutes


def test_stop_wakes_a_watch_waiting_out_retry_after(kubeconfig, namespace):
    replica = Replica(kubeconfig, namespace)
    refusing = RefusedWatches(replica.projects._custom)
    replica.projects._custom = refusing
    with replica as r:
        wait_for(lambda: refusing.refused >= 1)
        r.projects.stop()
        assert r.projects.join(10)  # not after the 30 s Retry-After
        assert refusing.refused == 1


def test_the_control_plane_reports_the_pinned_release(kube_api):
    """The Go build stamps the release into the binaries (an existing cluster given with
    FLYTEADMIN_TEST_KUBECONFIG only has to be recent enough)."""
    import os

    from flyteadmin.devstack import k8s_build

    version = client.VersionApi(kube_api).get_code()
    if os.environ.get("FLYTEADMIN_TEST_KUBECONFIG"):
        assert (int(version.major), int(version.minor.rstrip("+"))) >= (1, 30)
    else:
        assert version.git_version == k8s_build.kubernetes_version()
        assert (version.major, version.minor) == ("1", "36")


class _LossyProjectCodec(ProjectCodec):
    """Drops the description on the way in: decode(encode(v)) != v."""

    def encode(self, value: project_pb2.Project) -> dict:
        body = super().encode(value)
        body["spec"]["description"] = ""
        return body


def test_a_write_kept_without_decoding_is_checked_against_the_codec(kubeconfig, namespace):
    """Writes the server stored unchanged are cached as written, without decoding; the suite
    runs with FLYTEADMIN_VERIFY_WRITE_THROUGH=1, which decodes anyway and refuses a codec that
    does not round-trip (here: one that loses the description)."""
    with Replica(kubeconfig, namespace) as r:
        stored = r.run(r.projects.create(project("plain", "Plain")))
        assert stored.value == project("plain", "Plain")
        lossy = Collection(r.api, namespace, _LossyProjectCodec(), r.http)
        with pytest.raises(AdminError, match="does not round-trip"):
            r.run(lossy.create(project_pb2.Project(id="lossy", name="L", description="gone")))


def test_cached_sizes_are_the_stored_json_without_encoding_again(
    kubeconfig, namespace, kube_api, monkeypatch
):
    """An object's size (what the etcd budget adds up) comes from the bytes kube-apiserver
    answered or sent on the watch: the write path and the watch never encode it again."""
    from flyteadmin.core import store as store_module

    def no_encoding(body):
        raise AssertionError("an object was encoded again to measure it")

    with Replica(kubeconfig, namespace) as writer, Replica(kubeconfig, namespace) as watcher:
        monkeypatch.setattr(store_module, "_json_size", no_encoding)

        async def scenario():
            first = await writer.projects.create(project("sized", "Größe"))  # not ASCII
            return await writer.projects.update(first, project("sized", "Größe 2"))

        written = writer.run(scenario())
        seen = wait_for(
            lambda: (
                (s := watcher.projects.get("sized")) is not None
                and s.resource_version == written.resource_version
                and s
            ),
            "the second replica's watch to deliver the update",
        )
        raw = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
            "flyteadmin.io", "v1alpha1", namespace, "projects", "sized", _preload_content=False
        )
        assert written.size == seen.size == len(raw.data.rstrip(b"\n"))


def test_a_create_records_spec_and_status_whole_for_the_field_manager(
    kubeconfig, namespace, kube_api
):
    """kube-apiserver records the fields of every create (managedFields; a create cannot opt
    out): with spec and status atomic in the CRDs that is one entry for each, not one per leaf
    to store, send to every watch and decode (docs/storage.md). The first update drops it."""
    with Replica(kubeconfig, namespace) as r:
        first = r.run(r.projects.create(project("tracked", "Tracked")))
        custom = client.CustomObjectsApi(kube_api)

        def managed():
            body = custom.get_namespaced_custom_object(
                "flyteadmin.io", "v1alpha1", namespace, "projects", "tracked"
            )
            return body["metadata"].get("managedFields") or []

        (entry,) = managed()
        assert entry["fieldsV1"]["f:spec"] == {}, entry["fieldsV1"]
        r.run(r.projects.update(first, project("tracked", "Tracked 2")))
        assert managed() == []
