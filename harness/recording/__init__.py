"""Record gRPC traffic through a transparent proxy, replay it open-loop, and turn it into a profile.

- :mod:`.format`: the recording file (``casemesh.harness.v1`` messages, varint
  length-delimited; docs/recording.md), its reader and writer.
- :mod:`.proxy`: ``casemesh record``, a generic grpc.aio proxy that forwards
  any method to an upstream and records every call.
- :mod:`.replay`: ``casemesh replay``, sends recorded calls at their offsets
  divided by a speed factor and compares status codes.
- :mod:`.to_profile`: ``casemesh recording to-profile``, a profile whose
  arrivals are the recorded call times.
"""
