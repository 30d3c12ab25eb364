# syntax=docker/dockerfile:1
# evaluation-svc image: VAE candidacies, juries and synthesis grids (gRPC).
# Build from the repository root (the context needs the sources, package.json and package-lock.json):
#   docker build -f docker/evaluation-svc.Dockerfile -t parcours/evaluation-svc:dev .
# Stage 1 builds only the evaluation-svc target on Debian 12 with the packages of scripts/deps.sh;
# stage 2 is debian:12-slim with the runtime packages below, run as uid 10001.
#
# tests/k8s/check_images.sh reads the two lines below: every shared library the built binary
# resolves (ldd) must come from a package in RUNTIME_PACKAGES or in their dependencies, and so must
# each file of "runtime-files". Keep RUNTIME_PACKAGES on one line.
# runtime-files: /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates cmake ninja-build g++ pkg-config binutils \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libgtest-dev libgmock-dev \
      libmysqlcppconn-dev libsqlite3-dev libssl-dev libyaml-cpp-dev prometheus-cpp-dev libexpat1-dev \
      libhpdf-dev nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# googleapis protos come from npm (google-proto-files), pinned by package-lock.json.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
COPY . .
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARCOURS_WERROR=ON \
 && ninja -C /build evaluation-svc \
 && install -d /out \
 && strip --strip-debug -o /out/evaluation-svc "$(find /build -type f -name evaluation-svc -perm -u+x | head -n1)"

FROM debian:12-slim
ARG RUNTIME_PACKAGES="libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libyaml-cpp0.7 libsqlite3-0 libmysqlcppconn7v5 libssl3 libhpdf-2.3.0 fonts-dejavu-core"
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends $RUNTIME_PACKAGES \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 parcours \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin parcours
COPY --from=build /out/evaluation-svc /usr/local/bin/evaluation-svc
LABEL org.opencontainers.image.title="evaluation-svc" \
      org.opencontainers.image.description="Parcours evaluation-svc: VAE candidacies, juries and synthesis grids (gRPC)."
# Nothing is written to the working directory or the image: the config names every path
# (Kubernetes mounts /etc/parcours and an emptyDir on /tmp; the root filesystem is read-only).
WORKDIR /
USER 10001:10001
EXPOSE 50051 50052 9090
ENTRYPOINT ["/usr/local/bin/evaluation-svc"]
CMD ["serve", "--config", "/etc/parcours/config.yaml"]
