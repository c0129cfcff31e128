# syntax=docker/dockerfile:1.7
# FluxUp image: the operator (with its UI) and the admission webhook, plus Node 24 and
# Renovate 44, which the operator runs itself in lookup-only mode. Multi-stage, non-root.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS renovate
ARG RENOVATE_VERSION=44.121.2
RUN npm install --global --omit=dev --no-audit --no-fund "renovate@${RENOVATE_VERSION}" \
 && npm cache clean --force

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fluxup ./fluxup
COPY webhook ./webhook
COPY certs ./certs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=renovate /usr/local/bin/node /usr/local/bin/node
COPY --from=renovate /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s /usr/local/lib/node_modules/renovate/dist/renovate.js /usr/local/bin/renovate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels fluxup && rm -rf /wheels
COPY crds /opt/fluxup/crds
RUN useradd --uid 65532 --user-group --home-dir /home/fluxup --create-home fluxup
USER 65532:65532
ENV HOME=/home/fluxup PYTHONUNBUFFERED=1
EXPOSE 8443 8080 9090
ENTRYPOINT ["/usr/bin/tini", "--", "fluxup"]
CMD ["operator"]
