# forq container image: a build stage with the compiler and -dev packages,
# and a slim runtime stage with the shared libraries, the binary, the example
# configuration and the entry point. forq runs as PID 1 (see docs/containers.md).
#
#   docker build -t forq .
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 --stop-timeout 30 forq

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      meson ninja-build pkg-config gcc libc6-dev \
      libhiredis-dev libssl-dev libev-dev libinih-dev libjansson-dev libsystemd-dev libyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN meson setup build -Dtests=false --buildtype=release \
 && ninja -C build \
 && meson install -C build --destdir /out

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libhiredis0.14 libssl3 ca-certificates libev4 libinih1 libjansson4 libsystemd0 libyaml-0-2 tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 forq \
 && useradd --system --uid 10001 --gid forq --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin forq
COPY --from=build /out/usr/local/bin/forq /usr/local/bin/forq
# Example plugins (libdir/forq/libforq_noop.so), wherever meson's libdir is.
COPY --from=build /out/usr/local/lib/ /usr/local/lib/
COPY etc/forq.ini /etc/forq/forq.ini
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# Fails the build if a runtime library is missing or the shipped file is bad.
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh \
 && /usr/local/bin/forq -n -C /etc/forq/forq.ini

# Numeric, so that Kubernetes' runAsNonRoot can verify it (10001 = forq).
USER 10001:10001
# forq's graceful stop; give it shutdown_timeout + 5 s (30 s by default):
# docker stop -t 30, Compose stop_grace_period: 30s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["--processes", "auto", "-C", "/etc/forq/forq.ini"]
