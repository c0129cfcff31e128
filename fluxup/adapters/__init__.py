"""All I/O behind small Protocols: Kubernetes, Git, HTTP, the Renovate process."""
