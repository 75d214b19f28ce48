# The dashboard alone, in front of a control plane reached over HTTP (the control
# plane image also serves it at `/`).
#   docker build -f docker/dashboard.Dockerfile -t tempovoice/dashboard .
#   docker run -e TEMPOVOICE_API_URL=https://api.example.com \
#     -e TEMPOVOICE_DASHBOARD_SESSION_KEY=$(openssl rand -base64 32) \
#     -e TEMPOVOICE_DASHBOARD_SECURE_COOKIES=true -p 3000:3000 tempovoice/dashboard
# Pages, stylesheet and script are compiled into the binary: no assets to copy.
# Base images are pinned by index digest, the same two as docker/agent-runtime.Dockerfile.

FROM rust:1.99.0-bookworm@sha256:fbc3a359627c6b5d9c8b20aae5c413a87392954f020006d7a9f7d95938964b23 AS build
ARG TARGETARCH
WORKDIR /src
COPY . .
# One target dir per architecture, so a multi-platform build's two stages never share one.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,id=dashboard-target-${TARGETARCH},target=/src/target \
    cargo build --release --locked -p dashboard --bin dashboard \
 && cp target/release/dashboard /usr/local/bin/dashboard

FROM debian:bookworm-slim@sha256:7c7b2c966bc9ee8cedfeef67e0e279108992c77681fa595db4a9d65c06ccc587
# Debian packages are not pinned to versions: a point release replaces a version in
# the archive (a pinned one stops installing), and the base image digest already pins
# the distribution release.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 tempovoice
COPY --from=build /usr/local/bin/dashboard /usr/local/bin/dashboard
USER 10001
ENV TEMPOVOICE_LISTEN=0.0.0.0:3000 \
    TEMPOVOICE_LOG_FORMAT=json
EXPOSE 3000
# Health is the orchestrator's or load balancer's to judge over HTTP; the image has no
# HTTP client for Docker to ask with.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/dashboard"]
