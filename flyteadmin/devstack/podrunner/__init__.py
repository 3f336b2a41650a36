"""A local pod runner: the embedded dev stack's stand-in for a kubelet. A development convenience.

The local control plane (``controlplane.py``) has no scheduler and no kubelet, so Pods would stay
Pending forever. ``PodRunner`` registers a Node, binds the unscheduled Pods of managed namespaces
to it, runs each container's command and args as a local process group in a configurable Python
environment (the image is ignored), and reports status through ``pods/status`` as a kubelet does.
It is used by ``flyteadmin dev`` and the tests only: on a real cluster (kind or otherwise) the
kubelet runs Pods and the runner is off. See docs/podrunner.md.
"""

from flyteadmin.devstack.podrunner.gcs_env import gcs_emulator_env
from flyteadmin.devstack.podrunner.runner import PodRunner, RunnerOptions

__all__ = ["PodRunner", "RunnerOptions", "gcs_emulator_env"]
