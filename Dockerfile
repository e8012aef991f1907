# syntax=docker/dockerfile:1
# The modelrollout operator image. Build from the repository root:
#   docker build -t modelrollout:dev .

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/modelrollout
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/modelrollout/bin/pip install --no-cache-dir .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="modelrollout" \
      org.opencontainers.image.description="Kubernetes operator that takes machine learning models into production safely" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/modelrollout/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /opt/modelrollout /opt/modelrollout
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["modelrollout"]
CMD ["run", "--all-namespaces"]
