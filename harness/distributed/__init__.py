"""The distributed harness: one coordinator, N ``casemesh worker`` processes on any machines (docs/scale-out.md).

- :mod:`.coordinator`: ``casemesh run --coordinator-listen HOST:PORT --expect-workers N``
  serves ``casemesh.harness.v1.CoordinatorService`` and merges the workers' results;
- :mod:`.worker`: ``casemesh worker --coordinator HOST:PORT``;
- :mod:`.assignment`: the profile, plan digest and seeded state a worker receives;
- :mod:`.wire`: the local pool's worker messages as protobuf.
"""
