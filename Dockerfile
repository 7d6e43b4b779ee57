# Multi-stage build: compile in the Rust image, run as a non-root user in a slim image.
FROM rust:1.95-bookworm AS build
WORKDIR /src

# Dependencies in a layer of their own: only the manifests and the lock file, with empty
# sources, so that a change to egret's code rebuilds egret's crates and nothing else.
# (Add a line here when a crate joins the workspace.) The stubs' own artifacts are
# removed after: the real sources may carry older timestamps than they do.
COPY Cargo.toml Cargo.lock ./
COPY crates/app/Cargo.toml crates/app/
COPY crates/clock/Cargo.toml crates/clock/
COPY crates/control/Cargo.toml crates/control/
COPY crates/metrics/Cargo.toml crates/metrics/
COPY crates/oauth/Cargo.toml crates/oauth/
COPY crates/policy/Cargo.toml crates/policy/
COPY crates/postgres/Cargo.toml crates/postgres/
COPY crates/proxy/Cargo.toml crates/proxy/
COPY crates/test-support/Cargo.toml crates/test-support/
COPY crates/tls/Cargo.toml crates/tls/
COPY crates/ui/Cargo.toml crates/ui/
COPY crates/vault/Cargo.toml crates/vault/
COPY crates/webhooks/Cargo.toml crates/webhooks/
RUN mkdir -p crates/cli benches \
    && echo 'fn main() {}' > crates/cli/main.rs \
    && echo 'fn main() {}' > benches/hot_path.rs \
    && for c in app clock control metrics oauth policy postgres proxy test-support tls ui vault webhooks; do \
         mkdir -p crates/$c/src && touch crates/$c/src/lib.rs; done \
    && cargo build --profile dist --locked --bin egret \
    && rm -rf crates benches target/dist/.fingerprint/egret* target/dist/deps/*egret* target/dist/egret*

# egret itself: the `dist` profile is the release build, stripped.
COPY . .
RUN cargo build --profile dist --locked --bin egret

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/egret --create-home egret
COPY --from=build /src/target/dist/egret /usr/local/bin/egret
COPY config/container.yaml /etc/egret/egret.yaml
# Everything egret keeps (CA, vault, master key, admin token) lives in this volume. It
# must be writable by uid 10001 (the `egret` user): a named volume is; for a host
# directory, `chown 10001 DIR` first.
USER egret
WORKDIR /var/lib/egret
VOLUME ["/var/lib/egret"]
# 3128: the proxy, for sandboxes. 3129: the control plane, which listens on the
# container's loopback only unless EGRET_CONTROL_LISTEN says otherwise (README,
# "Running in a container").
EXPOSE 3128
ENV EGRET_CONFIG=/etc/egret/egret.yaml
# No curl in the image: egret asks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["egret", "health"]
ENTRYPOINT ["egret"]
CMD ["serve"]
