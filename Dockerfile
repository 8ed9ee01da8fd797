# gfaudit images, all built from the project's wheel (whose base dependencies name no ONNX runtime):
#   auditor-cpu  small; gfaudit[cpu]: CPU onnxruntime; no torch, no pip  docker build --target auditor-cpu -t gfaudit:cpu .
#   auditor-gpu  gfaudit[gpu]: onnxruntime-gpu + CUDA/cuDNN wheels; no torch  (run with --gpus all)
#   trainer      CUDA PyTorch + gfaudit[train,gpu,ray], for `gfaudit train` on a GPU host; also a Ray
#                worker: override the entrypoint with `ray start --address=HEAD:6379 --block`
#                (docs/scale-out.md)
# Each installs a pinned requirements/*.txt (exactly one ONNX runtime) into a virtual environment
# in a build stage, then the wheel with --no-deps; the runtime images copy that environment only.
# The workspace is mounted at /workspace; every image runs as the non-root user gfaudit (uid 10001);
# `docker run --user "$(id -u):$(id -g)"` runs it as the workspace's owner instead (docs/ci.md).
# Base images are pinned to exact versions; pin by digest in your registry mirror if you need
# byte-for-byte rebuilds. Builders without a registry pass a local base image instead
# (`--build-arg PYTHON_IMAGE=gfaudit-base:bookworm`, made by .ci/docker-base; docs/ci.md).
# No `# syntax=` line: it would make BuildKit pull a frontend image from a registry.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG GFAUDIT_VERSION=0.1.0

# ---------------------------------------------------------------------------- wheel
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY gfaudit ./gfaudit
COPY trainer ./trainer
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# ---------------------------------------------------------------------------- common runtime
FROM ${PYTHON_IMAGE} AS runtime
ARG GFAUDIT_VERSION
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/gfaudit \
    PATH=/opt/gfaudit/bin:$PATH
RUN groupadd --system --gid 10001 gfaudit \
    && useradd --system --uid 10001 --gid gfaudit --create-home --home-dir /home/gfaudit gfaudit \
    && mkdir /workspace && chown gfaudit:gfaudit /workspace
WORKDIR /workspace
LABEL org.opencontainers.image.title="gfaudit" \
      org.opencontainers.image.description="GanFinger model-ownership auditor: signed fingerprint bundles, ONNX suspects" \
      org.opencontainers.image.source="https://github.com/gfaudit/gfaudit" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${GFAUDIT_VERSION}"

# ---------------------------------------------------------------------------- auditor-cpu
# The environment: the pinned requirements, the wheel, then pip and setuptools removed (the
# auditor never imports them) and test data that ships inside onnx's wheel dropped.
FROM ${PYTHON_IMAGE} AS auditor-cpu-env
ARG GFAUDIT_VERSION
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/auditor-cpu.txt /tmp/requirements.txt
COPY --from=wheel /dist /tmp/dist
RUN python3 -m venv /opt/gfaudit \
    && /opt/gfaudit/bin/pip install --no-cache-dir -r /tmp/requirements.txt \
    && /opt/gfaudit/bin/pip install --no-cache-dir --no-index --no-deps --find-links /tmp/dist "gfaudit==${GFAUDIT_VERSION}" \
    && /opt/gfaudit/bin/pip uninstall --yes pip setuptools \
    && rm -rf /opt/gfaudit/lib/python3*/site-packages/onnx/backend/test \
    && find /opt/gfaudit -depth -name __pycache__ -type d -exec rm -rf {} +

FROM runtime AS auditor-cpu
COPY --from=auditor-cpu-env /opt/gfaudit /opt/gfaudit
USER 10001:10001
ENTRYPOINT ["gfaudit"]
CMD ["--help"]

# ---------------------------------------------------------------------------- auditor-gpu
FROM ${PYTHON_IMAGE} AS auditor-gpu-env
ARG GFAUDIT_VERSION
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/auditor-gpu.txt /tmp/requirements.txt
COPY --from=wheel /dist /tmp/dist
RUN python3 -m venv /opt/gfaudit \
    && /opt/gfaudit/bin/pip install --no-cache-dir -r /tmp/requirements.txt \
    && /opt/gfaudit/bin/pip install --no-cache-dir --no-index --no-deps --find-links /tmp/dist "gfaudit==${GFAUDIT_VERSION}" \
    && /opt/gfaudit/bin/pip uninstall --yes pip setuptools \
    && rm -rf /opt/gfaudit/lib/python3*/site-packages/onnx/backend/test \
    && find /opt/gfaudit -depth -name __pycache__ -type d -exec rm -rf {} +

FROM runtime AS auditor-gpu
COPY --from=auditor-gpu-env /opt/gfaudit /opt/gfaudit
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
ENTRYPOINT ["gfaudit"]
CMD ["--help"]

# ---------------------------------------------------------------------------- trainer
# Keeps pip: Ray workers and notebooks on a GPU host may add packages.
FROM ${PYTHON_IMAGE} AS trainer-env
ARG GFAUDIT_VERSION
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/auditor-gpu.txt requirements/trainer.txt /tmp/requirements/
COPY --from=wheel /dist /tmp/dist
RUN python3 -m venv /opt/gfaudit \
    && /opt/gfaudit/bin/pip install --no-cache-dir -r /tmp/requirements/trainer.txt \
    && /opt/gfaudit/bin/pip install --no-cache-dir --no-index --no-deps --find-links /tmp/dist "gfaudit==${GFAUDIT_VERSION}"

FROM runtime AS trainer
COPY --from=trainer-env /opt/gfaudit /opt/gfaudit
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    GFAUDIT_CACHE=/workspace/.cache/gfaudit
USER 10001:10001
ENTRYPOINT ["gfaudit"]
CMD ["train", "--help"]
