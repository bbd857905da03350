"""Write the casemesh Grafana dashboards as JSON: ``python dashboards/generate.py [--out DIR]``.

The dashboards are code (``dashboards/casemesh_dashboards/``, one module per dashboard,
built with the Grafana foundation SDK); the JSON in ``dashboards/json/`` is generated
from it, committed, and provisioned into Grafana (``dashboards/provisioning/``).
``make dashboards`` runs this; tests/unit/test_dashboards.py fails when the committed
JSON differs from what this writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from casemesh_dashboards import DASHBOARDS  # noqa: E402
from casemesh_dashboards.common import render  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "json", help="directory for the JSON files [default: dashboards/json]")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in DASHBOARDS.items():
        (args.out / name).write_text(render(build()))
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
