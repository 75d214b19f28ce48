# The control plane image: the REST API, the dashboard at `/`, the deployment workers
# and the operator CLI, for x86_64 and ARM64:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     -f docker/control-plane.Dockerfile -t {registry}/{prefix}-control-plane:{tag} --push .
# A single-architecture build: docker build -f docker/control-plane.Dockerfile .
#
# The binary links nothing native beyond glibc: SQLite is compiled in (sqlx's `sqlite`
# feature bundles libsqlite3-sys), TLS is rustls (ring and aws-lc-rs, compiled in; no
# OpenSSL), so the final stage has only CA certificates (the AWS SDK's and reqwest's
# roots) and tini as PID 1 (SIGTERM reaches the server, which drains within
# TEMPOVOICE_SHUTDOWN_GRACE_SECS). Runs as a non-root user. The database is
# PostgreSQL in production (DATABASE_URL, TEMPOVOICE_SECRETS_KEY); without it the
# SQLite default lives under TEMPOVOICE_DATA_DIR, on the task's writable storage.
# Base images are pinned by index digest, the same two as docker/agent-runtime.Dockerfile.
#
# Operator commands run in the same image: `docker run … IMAGE tenant create --name …`.

FROM rust:1.99.0-bookworm@sha256:fbc3a359627c6b5d9c8b20aae5c413a87392954f020006d7a9f7d95938964b23 AS build
ARG TARGETARCH
WORKDIR /src
COPY . .
# One target dir per architecture, so a multi-platform build's two stages never share one.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,id=control-plane-target-${TARGETARCH},target=/src/target \
    cargo build --release --locked -p control-plane --bin control-plane \
 && cp target/release/control-plane /usr/local/bin/control-plane

FROM debian:bookworm-slim@sha256:7c7b2c966bc9ee8cedfeef67e0e279108992c77681fa595db4a9d65c06ccc587
# Debian packages are not pinned to versions: a point release replaces a version in
# the archive (a pinned one stops installing), and the base image digest already pins
# the distribution release.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tempovoice \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tempovoice --create-home tempovoice
COPY --from=build /usr/local/bin/control-plane /usr/local/bin/control-plane
# uid and gid 10001, as the task definition's `user` (infra/modules/control-plane).
USER 10001:10001
WORKDIR /var/lib/tempovoice
ENV TEMPOVOICE_LISTEN=0.0.0.0:8080 \
    TEMPOVOICE_DATA_DIR=/var/lib/tempovoice/data \
    TEMPOVOICE_LOG_FORMAT=json
EXPOSE 8080
# Health is the load balancer's to judge (its target group asks the API over HTTP);
# the image has no HTTP client for Docker to ask with.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/control-plane"]
# With no subcommand the binary serves too; `serve` says so. Replace CMD to run an
# operator command (`tenant create`, `key issue | list | revoke`).
CMD ["serve"]
