# syntax=docker/dockerfile:1.7
# gfaudit images, all built from the project's wheel (whose base dependencies name no ONNX runtime):
#   auditor-cpu  small; gfaudit[cpu]: CPU onnxruntime; no torch       docker build --target auditor-cpu -t gfaudit:cpu .
#   auditor-gpu  gfaudit[gpu]: onnxruntime-gpu + CUDA/cuDNN wheels; no torch  (run with --gpus all)
#   trainer      CUDA PyTorch + gfaudit[train,gpu,ray], for `gfaudit train` on a GPU host; also a Ray
#                worker: override the entrypoint with `ray start --address=HEAD:6379 --block`
#                (docs/scale-out.md)
# Each installs a pinned requirements/*.txt (exactly one ONNX runtime), then the wheel with --no-deps.
# The workspace is mounted at /workspace; every image runs as the non-root user gfaudit (uid 10001).
# Base images are pinned to exact versions; pin by digest in your registry mirror if you need
# byte-for-byte rebuilds (docs/ci.md).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---------------------------------------------------------------------------- wheel
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
RUN pip install --no-cache-dir "build==1.2.2.post1"
COPY pyproject.toml README.md LICENSE ./
COPY gfaudit ./gfaudit
COPY trainer ./trainer
RUN python -m build --wheel --outdir /dist .

# ---------------------------------------------------------------------------- common runtime
FROM ${PYTHON_IMAGE} AS runtime
ARG GFAUDIT_VERSION=0.1.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/gfaudit \
    PATH=/opt/gfaudit/bin:$PATH
RUN python -m venv /opt/gfaudit \
    && groupadd --system --gid 10001 gfaudit \
    && useradd --system --uid 10001 --gid gfaudit --create-home --home-dir /home/gfaudit gfaudit \
    && mkdir /workspace && chown gfaudit:gfaudit /workspace
WORKDIR /workspace
LABEL org.opencontainers.image.title="gfaudit" \
      org.opencontainers.image.description="GanFinger model-ownership auditor: signed fingerprint bundles, ONNX suspects" \
      org.opencontainers.image.source="https://github.com/gfaudit/gfaudit" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${GFAUDIT_VERSION}"

# ---------------------------------------------------------------------------- auditor-cpu
FROM runtime AS auditor-cpu
COPY requirements/auditor-cpu.txt /tmp/requirements.txt
COPY --from=wheel /dist /tmp/dist
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-index --no-deps --find-links /tmp/dist "gfaudit==${GFAUDIT_VERSION}" \
    && rm -rf /tmp/dist /tmp/requirements.txt
USER 10001:10001
ENTRYPOINT ["gfaudit"]
CMD ["--help"]

# ---------------------------------------------------------------------------- auditor-gpu
FROM runtime AS auditor-gpu
COPY requirements/auditor-gpu.txt /tmp/requirements.txt
COPY --from=wheel /dist /tmp/dist
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-index --no-deps --find-links /tmp/dist "gfaudit==${GFAUDIT_VERSION}" \
    && rm -rf /tmp/dist /tmp/requirements.txt
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
ENTRYPOINT ["gfaudit"]
CMD ["--help"]

# ---------------------------------------------------------------------------- trainer
FROM runtime AS trainer
COPY requirements/auditor-gpu.txt requirements/trainer.txt /tmp/requirements/
COPY --from=wheel /dist /tmp/dist
RUN pip install --no-cache-dir -r /tmp/requirements/trainer.txt \
    && pip install --no-cache-dir --no-index --no-deps --find-links /tmp/dist "gfaudit==${GFAUDIT_VERSION}" \
    && rm -rf /tmp/dist /tmp/requirements
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    GFAUDIT_CACHE=/workspace/.cache/gfaudit
USER 10001:10001
ENTRYPOINT ["gfaudit"]
CMD ["train", "--help"]
