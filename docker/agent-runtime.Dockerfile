# The agent runtime image every agent's ECS service runs, for x86_64 and ARM64 agents:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     -f docker/agent-runtime.Dockerfile -t {registry}/tempovoice-agent-runtime:{tag} --push .
# (one manifest list: the deployer pins its digest, and each task pulls its own
# architecture). A single-architecture build: docker build -f docker/agent-runtime.Dockerfile .
# Multi-stage: the build stage has Rust and the PocketSphinx headers; the final stage
# only the runtime libraries, the US English speech model, espeak-ng, and tini as PID 1
# (so SIGTERM from ECS reaches the runtime, which drains its calls). Runs as a non-root
# user; the spool lives on the task's writable storage.

FROM rust:1-bookworm AS build
ARG TARGETARCH
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpocketsphinx-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,id=agent-runtime-target-${TARGETARCH},target=/src/target \
    cargo build --release --locked -p agent-runtime --bin agent-runtime \
 && cp target/release/agent-runtime /usr/local/bin/agent-runtime

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates tini espeak-ng libpocketsphinx3 libsphinxbase3 pocketsphinx-en-us \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/tempovoice --create-home tempovoice
COPY --from=build /usr/local/bin/agent-runtime /usr/local/bin/agent-runtime
USER 10001
ENV TEMPOVOICE_LISTEN=0.0.0.0:8080 \
    TEMPOVOICE_SPOOL_DIR=/var/lib/tempovoice/spool \
    TEMPOVOICE_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/agent-runtime"]
