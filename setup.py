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

setup(packages=packages, package_dir=ROOTS, package_data={"flyteadmin": ["py.typed"]})
