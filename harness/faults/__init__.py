"""Fault injection driven by the harness: the profile's ``faults:`` and ``--fault`` (docs/profiles.md, docs/cli.md).

``model`` (the entries and the resolved :class:`~.model.Fault`), ``grammar``
(``--fault``), ``plan`` (a run's faults, checked), ``runner`` (switching
them on and off during the run: the schedule file the services follow, and
the process faults on the embedded mesh), ``summary`` (``faults`` in
result.json and its lines in the terminal summary). The server side is
services/runtime/faults.py.
"""
