"""``casemesh compare A B``: two runs' latency percentiles side by side, with confidence intervals of the differences.

``document`` loads and checks the result documents, ``stats`` holds the
statistics (the method is justified there), ``comparison`` builds the
comparison document (``compare.json``), ``gate`` parses and applies
``--fail-on``, ``terminal`` and ``page`` show it (a Rich table, a
self-contained HTML page). docs/cli.md, section "casemesh compare".
"""
