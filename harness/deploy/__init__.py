"""Deployment outside one machine: ``casemesh deploy k8s`` (:mod:`.k8s`) on top of checked Kubernetes objects (:mod:`.objects`)."""
