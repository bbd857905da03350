"""Regenerate the Python stubs of protos/ into gen/python (or check them).

Usage:
    python tools/gen_protos.py           # rewrite gen/python from protos/
    python tools/gen_protos.py --check   # exit 1 when gen/python is stale

Stubs are made with grpcio-tools (the protoc and gRPC plugin it bundles), so
the output depends only on the installed grpcio-tools version, pinned by the
environment. ``__init__.py`` files are added so every proto package is an
ordinary Python package (``casemesh.urlshortener.v1``); the top-level
``casemesh`` stays a namespace shared with ``casemesh.services`` and
``casemesh.harness``. The stubs of protos/casemesh/harness/ (the harness's own
formats, ``casemesh.harness.v1``) go to gen/python/harness/ instead, which
setup.py maps into ``casemesh.harness``: a gen/python/casemesh/harness folder
would shadow the ``harness/`` package in an editable install.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "gen" / "python"


def generate(out: Path) -> None:
    """Write the stubs of every .proto under protos/ into ``out``."""
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    harness = out / "casemesh" / "harness"
    if harness.exists():
        shutil.move(harness, out / "harness")
        for package_dir in (out / "harness").rglob("*"):
            if package_dir.is_dir():
                (package_dir / "__init__.py").touch()
    for package_dir in (out / "casemesh").rglob("*"):
        if package_dir.is_dir():
            (package_dir / "__init__.py").touch()


def _differences(a: Path, b: Path) -> list[str]:
    cmp = filecmp.dircmp(a, b)
    found = [str(Path(a, n)) for n in cmp.left_only + cmp.right_only + cmp.diff_files]
    for sub in cmp.common_dirs:
        found += _differences(a / sub, b / sub)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if gen/python is out of date")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        if opts.check:
            stale = _differences(fresh, OUT) if OUT.exists() else [str(OUT)]
            stale = [s for s in stale if "__pycache__" not in s]
            if stale:
                print("generated stubs are stale; run `make protos`:", *stale, sep="\n  ", file=sys.stderr)
                return 1
            print("generated stubs are up to date")
            return 0
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(fresh, OUT)
        print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
