"""Package layout: one import namespace, ``flyteadmin``, over the design card's top-level folders.

``operator/`` cannot be imported as ``operator`` (a standard-library module that the interpreter
loads at start-up), so each code folder is mapped under ``flyteadmin.``:

    flyteadmin/   -> flyteadmin             (command line, local dev stack)
    core/         -> flyteadmin.core        (shared core)
    api_server/   -> flyteadmin.api_server  (gRPC + HTTP front door)
    operator/     -> flyteadmin.operator    (Kopf front door)

Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

ROOTS = {
    "flyteadmin": "flyteadmin",
    "flyteadmin.core": "core",
    "flyteadmin.api_server": "api_server",
    "flyteadmin.operator": "operator",
}

packages: list[str] = []
for package, folder in ROOTS.items():
    packages += [package] + [f"{package}.{sub}" for sub in find_packages(folder)]

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
    package_dir={**ROOTS, "flyteadmin.gotools": "tools"},
    package_data={"flyteadmin": ["py.typed"], **GO_TOOLS},
)
