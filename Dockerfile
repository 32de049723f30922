# Multi-stage: `api` has no torch (onnxruntime only); `worker` has CUDA torch and onnxruntime-gpu.
# Build: docker build --target api -t ganserve-api .   /   docker build --target worker -t ganserve-worker .

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GANSERVE_HOME=/var/lib/ganserve GANSERVE_DATA_DIR=/var/lib/ganserve/data
WORKDIR /app
RUN useradd --create-home --uid 10001 ganserve && mkdir -p /var/lib/ganserve && chown ganserve /var/lib/ganserve
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY models ./models
COPY worker ./worker
COPY bench ./bench

FROM base AS api
RUN pip install .
USER ganserve
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# The options of service.cli.up.api_command (what `ganserve up` runs and `ganserve bench serve` measures).
CMD ["uvicorn", "service.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", \
     "--loop", "uvloop", "--http", "httptools", "--no-access-log"]

FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS worker
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GANSERVE_HOME=/var/lib/ganserve GANSERVE_DATA_DIR=/var/lib/ganserve/data
# gcc: a worker of this image on a CPU compiles the fused engine's C kernels at first use
# (worker/training/kernels.c; without it the same steps run as torch ops, slower).
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv nodejs npm gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY --from=base /app /app
# CUDA torch from the default index, then the package with the worker and gpu extras.
RUN pip install torch && pip install '.[worker,gpu]'
RUN useradd --create-home --uid 10001 ganserve && mkdir -p /var/lib/ganserve && chown ganserve /var/lib/ganserve
USER ganserve
# One process per GPU: concurrency 1, prefork; CUDA is first touched inside the task, never in the parent.
CMD ["celery", "-A", "worker.celery_app", "worker", "--loglevel=INFO", "--concurrency=1", "--pool=prefork"]
