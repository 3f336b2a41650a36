"""Package layout: one import namespace, ``flyteadmin``, over the design card's top-level folders.

``operator/`` cannot be imported as ``operator`` (a standard-library module that the interpreter
loads at start-up), so each code folder is reached under ``flyteadmin.`` through a relative
symbolic link inside ``flyteadmin/`` (committed to git):

    flyteadmin/core       -> ../core        (shared core)
    flyteadmin/api_server -> ../api_server  (gRPC + HTTP front door)
    flyteadmin/operator   -> ../operator    (Kopf front door)

So ``flyteadmin/`` is an ordinary package tree on disk: type checkers, IDEs and import-linter
resolve ``flyteadmin.core.store`` to ``flyteadmin/core/store.py`` (= ``core/store.py``) from
the source tree alone, and setuptools' package discovery follows the links (it walks with
``followlinks=True``), so the wheel holds real files. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

packages = find_packages(include=["flyteadmin", "flyteadmin.*"])

# The Go wrapper modules (tools/: go.mod, go.sum, version files and propeller's spark-operator
# stand-in) are data of the package, so an installed `flyteadmin dev` builds what a checkout
# builds (flyteadmin/devstack/gobuild.py finds them as flyteadmin/gotools/).
GO_TOOLS = {
    "flyteadmin.gotools": [
        "*/go.mod",
        "*/go.sum",
        "*/*_VERSION",
        "propeller/sparkoperator/go.mod",
        "propeller/sparkoperator/**/*.go",
    ]
}
packages.append("flyteadmin.gotools")

setup(
    packages=packages,
    package_dir={"flyteadmin.gotools": "tools"},
    package_data={"flyteadmin": ["py.typed"], **GO_TOOLS},
)
