"""The shared runtime of every casemesh server: bootstrap, interceptors, topology, channels, tracing, metrics."""
