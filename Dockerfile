# keymesh container image: Debian 12 (bookworm), built with the same make
# targets as a developer machine, run as a non-root user.
#
#   docker build -t keymesh:local .
#   docker run --rm -p 8080:8080 keymesh:local            # single node
#   docker run --rm -v $PWD/my.yaml:/etc/keymesh/my.yaml:ro -p 8080:8080 \
#     keymesh:local --config /etc/keymesh/my.yaml         # own config
#   docker run --rm --entrypoint keymesh keymesh:local version
#
# Configuration: KEYMESH_CONFIG (default /etc/keymesh/keymesh.yaml, see
# deploy/keymesh.yaml), overridden by `--config FILE` (arguments after the
# image name go to `keymesh serve`), and KEYMESH_<SECTION>_<KEY> variables,
# which beat both. State (instance id, key-id sequence, admin key) lives in
# /var/lib/keymesh: mount a volume there to keep it across containers.

# --- builder: the toolchain and -dev packages from scripts/setup ---------------
FROM debian:bookworm AS builder
ARG JOBS=4
# No compiler cache inside an image build.
ENV CCACHE_DISABLE=1
WORKDIR /src
# scripts/setup alone first, so the package layer survives source changes.
# It runs apt-get itself (as root here, so without sudo).
COPY scripts/setup scripts/setup
RUN scripts/setup && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make build JOBS=${JOBS} \
 && /src/build/keymesh version \
 && strip --strip-debug -o /keymesh /src/build/keymesh

# --- runtime: the shared libraries keymesh links against, nothing else --------
FROM debian:bookworm-slim AS runtime
# libcaf-io/-openssl carry the cluster transport (mutual TLS); ca-certificates: https
# cluster.static_peers without cluster.static_peers_ca use the system CAs.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcaf-core0.17 libcaf-io0.17 libcaf-openssl0.17 \
      libspdlog1.10 libfmt9 libyaml-cpp0.7 libssl3 ca-certificates \
      libsqlite3-0 libmysqlcppconn7v5 libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 keymesh \
 && useradd --system --uid 10001 --gid keymesh --no-create-home \
      --home-dir /var/lib/keymesh --shell /usr/sbin/nologin keymesh \
 && install -d -o keymesh -g keymesh -m 0700 /var/lib/keymesh \
 && install -d -m 0755 /etc/keymesh /etc/keymesh/tls
COPY --from=builder /keymesh /usr/local/bin/keymesh
COPY deploy/keymesh.yaml /etc/keymesh/keymesh.yaml
COPY deploy/keymesh-healthcheck /usr/local/bin/keymesh-healthcheck
RUN chmod 0755 /usr/local/bin/keymesh /usr/local/bin/keymesh-healthcheck \
 && chmod 0644 /etc/keymesh/keymesh.yaml \
 && keymesh config check /etc/keymesh/keymesh.yaml > /dev/null

ENV KEYMESH_CONFIG=/etc/keymesh/keymesh.yaml
WORKDIR /var/lib/keymesh
USER 10001:10001
# 8080: HTTP API (http.listen); 7401: node-to-node (cluster.listen).
EXPOSE 8080 7401
STOPSIGNAL SIGTERM
# Assumes the default http.listen port 8080; pass another port as an argument
# of keymesh-healthcheck (in compose: healthcheck.test) if you change it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["keymesh-healthcheck", "8080"]
ENTRYPOINT ["keymesh", "serve"]
CMD []
