"""FluxUp admission webhook: aiohttp HTTPS transport plus a pure review() per kind.

* :mod:`webhook.reviews` — pure decisions, one module per kind (HelmRelease,
  OCIRepository, FluxUp's own objects), built on :mod:`fluxup.logic.gate`.
* :mod:`webhook.envelope` — AdmissionReview parsing (HTTP 400 if malformed) and encoding.
* :mod:`webhook.app` — the aiohttp application: ``/mutate``, ``/validate``, ``/healthz``,
  ``/readyz``, ``/metrics``; :mod:`webhook.metrics` — its Prometheus counters.
* :mod:`webhook.tls` — the serving certificate, reloaded when its files change.
* :mod:`webhook.server` — :func:`~webhook.server.run`, what ``fluxup webhook`` calls.
* :mod:`webhook.local` — run it as a local process against the sandbox (tests, benchmarks).

It imports only ``fluxup.api``, ``fluxup.logic`` and ``certs`` from this project and
makes no Kubernetes API calls: every decision comes from the request itself.
"""
