# syntax=docker/dockerfile:1
# One image for every entrypoint: mcp-operator run | proxy | vmcp | crds.
#   docker build -t mcp-operator:dev .
# tests/integration/test_dockerfile_install.py performs the build stage's steps in a fresh virtual
# environment and runs every entrypoint's --help; tests/unit/test_dockerfile.py runs hadolint.

# Build stage: a virtual environment holding the package and its pinned dependencies. Every dependency
# ships a wheel, so no compiler is needed here either; the runtime stage starts again from the slim base.
# BASE_IMAGE may name a locally made base with the same layout (python on PATH, python -m venv), e.g. the
# Debian base hack/images.py builds where no image registry is reachable; the default is the public one.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/mcp-operator
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY api api
COPY controller controller
COPY gateway gateway
COPY kube kube
COPY logs logs
COPY telemetry telemetry
RUN /opt/mcp-operator/bin/pip install --no-cache-dir -c requirements/constraints.txt . \
    && /opt/mcp-operator/bin/pip uninstall --yes pip

# Runtime stage: the slim Python base (no compilers, no build tools), the virtual environment, a non-root
# numeric user (so runAsNonRoot can verify it) and the mcp-operator command as the entrypoint.
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="mcp-operator" \
      org.opencontainers.image.description="Kubernetes operator for MCP servers, with its proxy and gateway" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/mcp-operator/mcp-operator"
COPY --from=build /opt/mcp-operator /opt/mcp-operator
ENV PATH=/opt/mcp-operator/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["mcp-operator"]
CMD ["run"]
