"""Package layout for setuptools.

The repository keeps the design card's tree (``services/``, ``harness/``,
``gen/python/casemesh`` for generated stubs); installed, everything lives under
the one import namespace ``casemesh``: ``casemesh.services``,
``casemesh.harness`` and the proto packages ``casemesh.<domain>.v1``.

The harness's own formats (``casemesh.harness.v1``, protos/casemesh/harness/v1)
are generated into ``gen/python/harness/`` instead (tools/gen_protos.py):
``casemesh.harness`` is the ``harness/`` folder, and a
``gen/python/casemesh/harness`` folder on the ``casemesh`` namespace's path
would shadow it in an editable install.
"""

from setuptools import find_packages, setup

ROOTS = {
    "casemesh.services": "services",
    "casemesh.harness": "harness",
    "casemesh": "gen/python/casemesh",
}
#: Generated packages that live inside a source package's namespace, mapped one by one.
GENERATED_IN_SOURCE = {
    "casemesh.harness.v1": "gen/python/harness/v1",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    for prefix, where in ROOTS.items():
        packages.append(prefix)
        packages += [f"{prefix}.{name}" for name in find_packages(where)]
    packages += list(GENERATED_IN_SOURCE)
    return packages, {**ROOTS, **GENERATED_IN_SOURCE}


packages, package_dir = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    # traces/: recorded arrival traces that shipped profiles replay (CSV), with their licence and attribution (README.md).
    package_data={"casemesh.harness": ["profiles/*.yaml", "traces/*.csv", "traces/README.md", "export/k6/*.js"], "casemesh.services": ["runtime/*.yaml"]},
)
