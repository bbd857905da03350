"""The interceptor chain every casemesh server and outbound channel uses (DESIGN.md §4)."""
