# syntax=docker/dockerfile:1
# Multi-stage build for Docker or Podman with a registry: compile in the Rust image, run
# as a non-root user in a slim Debian image. Without a registry (offline, or to get an
# image with nothing but egret in it), use scripts/image.sh: FROM scratch, with buildah.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and cargo's target folder between builds, so a
# source change rebuilds only egret's crates; there is no crate list to keep in step with
# the workspace. The binary is copied out because the target folder is not in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked --bin egret \
    && install -m 0755 target/dist/egret /usr/local/bin/egret

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/egret --create-home egret
COPY --from=build /usr/local/bin/egret /usr/local/bin/egret
COPY config/container.yaml /etc/egret/egret.yaml
# Everything egret keeps (CA, vault, master key, admin token) lives in this volume. It
# must be writable by uid 10001 (the `egret` user): a named volume is; for a host
# directory, `chown 10001 DIR` first.
USER 10001:10001
WORKDIR /var/lib/egret
VOLUME ["/var/lib/egret"]
# 3128: the proxy, for sandboxes. 3129: the control plane, which listens on the
# container's loopback only unless EGRET_CONTROL_LISTEN says otherwise (README,
# "Running in a container").
EXPOSE 3128
ENV EGRET_CONFIG=/etc/egret/egret.yaml
# No curl in the image: egret asks its own /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/egret", "health"]
ENTRYPOINT ["/usr/local/bin/egret"]
CMD ["serve"]
