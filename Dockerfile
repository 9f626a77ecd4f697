# syntax=docker/dockerfile:1
# One image for every entrypoint: mcp-operator run | proxy | vmcp | crds.
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/mcp-operator
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY api api
COPY controller controller
COPY gateway gateway
RUN /opt/mcp-operator/bin/pip install --no-cache-dir -c requirements/constraints.txt .

FROM python:3.11.14-slim-bookworm
COPY --from=build /opt/mcp-operator /opt/mcp-operator
ENV PATH=/opt/mcp-operator/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["mcp-operator"]
CMD ["run"]
