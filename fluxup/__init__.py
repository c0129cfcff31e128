"""FluxUp: snapshot-gated, one-click-reversible upgrades for Flux-managed apps."""

__version__ = "0.1.0"
