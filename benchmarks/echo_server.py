"""The bare reference server (``casemesh.bench.v1.EchoService`` on plain grpc.aio), as a script.

The server lives in the package (``casemesh.harness.calibration.echo_server``),
where ``casemesh calibrate`` and every run's control stream use it; this file
keeps the path the benchmarks, profiles and docs name. Usage::

    python benchmarks/echo_server.py --port 0                        # 0: any free port
    python benchmarks/echo_server.py --port 0 --service-time-ms 20   # a single-server M/D/1 queue
"""

import sys

from casemesh.harness.calibration.echo_server import main

if __name__ == "__main__":
    sys.exit(main())
