"""stackctl: one stack definition from a laptop to a Kubernetes cluster."""

from stackctl import codecache

__version__ = "0.1.0"

# Before any stackctl module creates a dataclass: their generated methods come compiled from a
# cache instead of being compiled on every run (stackctl/codecache.py).
codecache.install()
