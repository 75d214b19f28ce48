# The dashboard alone, in front of a control plane reached over HTTP (the control
# plane image also serves it at `/`).
#   docker build -f docker/dashboard.Dockerfile -t tempovoice/dashboard .
#   docker run -e TEMPOVOICE_API_URL=https://api.example.com \
#     -e TEMPOVOICE_DASHBOARD_SESSION_KEY=$(openssl rand -base64 32) \
#     -e TEMPOVOICE_DASHBOARD_SECURE_COOKIES=true -p 3000:3000 tempovoice/dashboard
# Pages, stylesheet and script are compiled into the binary: no assets to copy.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p dashboard --bin dashboard \
 && cp target/release/dashboard /usr/local/bin/dashboard

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 tempovoice
COPY --from=build /usr/local/bin/dashboard /usr/local/bin/dashboard
USER 10001
ENV TEMPOVOICE_DASHBOARD_LISTEN=0.0.0.0:3000 \
    TEMPOVOICE_LOG_FORMAT=json
EXPOSE 3000
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/dashboard"]
