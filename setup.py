"""Package layout for setuptools.

The repository keeps the design card's tree (``services/``, ``harness/``,
``gen/python/casemesh`` for generated stubs); installed, everything lives under
the one import namespace ``casemesh``: ``casemesh.services``,
``casemesh.harness`` and the proto packages ``casemesh.<domain>.v1``.
"""

from setuptools import find_packages, setup

ROOTS = {
    "casemesh.services": "services",
    "casemesh.harness": "harness",
    "casemesh": "gen/python/casemesh",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    for prefix, where in ROOTS.items():
        packages.append(prefix)
        packages += [f"{prefix}.{name}" for name in find_packages(where)]
    return packages, dict(ROOTS)


packages, package_dir = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"casemesh.harness": ["profiles/*.yaml"], "casemesh.services": ["runtime/*.yaml"]},
)
