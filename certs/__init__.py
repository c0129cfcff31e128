"""Certificates for the webhook (and the sandbox's PKI), made with ``cryptography``.

* :mod:`certs.authority` — pure builders: CA, serving and client certificates.
* :mod:`certs.bundle`, :mod:`certs.renewal` — the webhook's bundle, its Secret layout and
  the pure "needs renewal?" decision.
* :mod:`certs.kube`, :mod:`certs.ensure` — store the bundle in a Secret and inject the CA
  bundle into the webhook configurations (kubernetes_asyncio I/O).
* :mod:`certs.files`, :mod:`certs.commands` — files for local runs and the functions the
  ``fluxup certs`` CLI calls.

Private keys are never printed or logged.
"""
