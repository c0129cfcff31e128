"""FluxUp's web UI and JSON API, served by the operator process.

Server-rendered pages (aiohttp + jinja2, htmx and its SSE extension vendored in
``static/``), a JSON API with an OpenAPI document, OIDC login with sessions in sealed
cookies, and every Kubernetes call made as the logged-in user through impersonation.
Entry point: :func:`fluxup.ui.app.build_app`. The UI never imports the reconcilers or
kopf handlers: it creates requests and lets the operator do the work.
"""
