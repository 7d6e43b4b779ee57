# Multi-stage build: compile in the Rust image, run as a non-root user in a slim image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin egret

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/egret --create-home egret
COPY --from=build /src/target/release/egret /usr/local/bin/egret
COPY config/container.yaml /etc/egret/egret.yaml
USER egret
WORKDIR /var/lib/egret
VOLUME ["/var/lib/egret"]
EXPOSE 3128 3129
ENV EGRET_CONFIG=/etc/egret/egret.yaml
ENTRYPOINT ["egret"]
CMD ["serve"]
