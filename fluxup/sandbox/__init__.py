"""The sandbox: a real local control plane built from Go modules, for tests and the demo."""
