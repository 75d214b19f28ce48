# The agent runtime image every agent's ECS service runs, for x86_64 and ARM64 agents:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     -f docker/agent-runtime.Dockerfile -t {registry}/tempovoice-agent-runtime:{tag} --push .
# (one manifest list: the deployer pins its digest, and each task pulls its own
# architecture). A single-architecture build: docker build -f docker/agent-runtime.Dockerfile .
# Multi-stage: the build stage has Rust and the PocketSphinx headers; the final stage
# only the runtime libraries, the US English speech model, espeak-ng, and tini as PID 1
# (so SIGTERM from ECS reaches the runtime, which drains its calls). Runs as a non-root
# user; the spool lives on the task's writable storage.
#
# Base images are pinned by the digest of their multi-architecture index (the tag is
# kept for readers); docker/control-plane.Dockerfile and docker/dashboard.Dockerfile
# use the same two, so bump all three together.

FROM rust:1.99.0-bookworm@sha256:fbc3a359627c6b5d9c8b20aae5c413a87392954f020006d7a9f7d95938964b23 AS build
ARG TARGETARCH
# Debian packages are not pinned to versions: a point release replaces a version in
# the archive (a pinned one stops installing), and the base image digest already pins
# the distribution release.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpocketsphinx-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,id=agent-runtime-target-${TARGETARCH},target=/src/target \
    cargo build --release --locked -p agent-runtime --bin agent-runtime \
 && cp target/release/agent-runtime /usr/local/bin/agent-runtime

FROM debian:bookworm-slim@sha256:7c7b2c966bc9ee8cedfeef67e0e279108992c77681fa595db4a9d65c06ccc587
# Not pinned to versions: see the build stage.
# hadolint ignore=DL3008
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
# Health is the load balancer's to judge: each agent's target group asks GET /health
# (docs/deployer.md). The image has no HTTP client for Docker to ask with.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/agent-runtime"]
