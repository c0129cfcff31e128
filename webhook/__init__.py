"""FluxUp admission webhook: aiohttp HTTPS transport plus a pure review() per kind."""
