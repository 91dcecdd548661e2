#!/usr/bin/env bash
# Build, from Debian's packages, the images that stand in for the official ones
# (python, apache/kafka, postgres) where no container registry answers, and the
# sigex image on top. Idempotent: an image built from the same recipe (its folder's
# files, labelled on the image as sigex.recipe) is kept; a changed recipe is built
# again; --rebuild forces every image.
#
#   docker/images/build.sh            # then: SIGEX_IMAGES=local docker compose ...
#
# Needs a running Docker engine (the legacy builder is enough), debootstrap and
# network access to Debian's mirror and PyPI; the Kafka jars come from
# `sigex broker fetch` (Maven Central), cached in ~/.cache/sigex.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/docker/images"
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
kafka_version=${SIGEX_KAFKA_VERSION:-4.3.1}
rebuild=false
[ "${1:-}" = "--rebuild" ] && rebuild=true
export DOCKER_BUILDKIT=0

say() { printf '==> %s\n' "$*"; }
have() {  # have <image> [recipe]: the image exists (and was built from that recipe)
    $rebuild && return 1
    local label
    label=$(docker image inspect --format '{{index .Config.Labels "sigex.recipe"}}' "$1" 2>/dev/null) || return 1
    [ -z "${2:-}" ] || [ "$label" = "$2" ]
}
recipe() {  # recipe <context folder>: a digest of every file in it but the jars
    (cd "$1" && find . -path ./libs -prune -o -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

base=sigex-local/debian:$suite
if have "$base"; then
    say "$base exists"
else
    say "building $base with debootstrap (a few minutes)"
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >/dev/null
    tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi

build() {  # build <image> <context folder> [docker build arguments...]
    local image=$1 context=$2 digest
    shift 2
    digest=$(recipe "$context")
    if have "$image" "$digest"; then
        say "$image exists"
        return
    fi
    say "building $image"
    docker build --network host --quiet --build-arg "BASE=$base" --label "sigex.recipe=$digest" \
        -t "$image" "$@" "$context" >/dev/null
}

# Python: Debian's python3 (3.11 on bookworm) with venv and pip; the machine's CA
# certificates so pip inside later builds trusts the same mirrors this machine does.
python_context=$(mktemp -d)
cp "$here/python.Dockerfile" "$python_context/Dockerfile"
cp /etc/ssl/certs/ca-certificates.crt "$python_context/ca-certificates.crt"
build sigex-local/python:3.11 "$python_context"
rm -rf "$python_context"

# Kafka: a JRE and the jars `sigex broker fetch` brings from Maven Central, with a
# start script that reads the same KAFKA_* variables as the official image.
"$root/.venv/bin/sigex" broker fetch >/dev/null
kafka_context=$(mktemp -d)
cp "$here/kafka.Dockerfile" "$kafka_context/Dockerfile"
cp -r "$here/kafka" "$kafka_context/bin"
cp -r "${SIGEX_CACHE_DIR:-$HOME/.cache/sigex}/kafka-$kafka_version/libs" "$kafka_context/libs"
build "sigex-local/kafka:$kafka_version" "$kafka_context"
rm -rf "$kafka_context"

# PostgreSQL: Debian's server with an entry honouring POSTGRES_USER, POSTGRES_DB and
# POSTGRES_PASSWORD_FILE as the official image does.
postgres_context=$(mktemp -d)
cp "$here/postgres.Dockerfile" "$postgres_context/Dockerfile"
cp "$here/postgres/entry.sh" "$postgres_context/entry.sh"
build sigex-local/postgres:15 "$postgres_context"
rm -rf "$postgres_context"

# sigex itself, on the local Python image (the legacy builder reads only a
# .dockerignore at the context root, so the context is a clean export of the tree)
sigex_context=$(mktemp -d)
git -C "$root" ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$sigex_context")
# (always built again: it is this checkout's code; the layer cache keeps it quick)
say "building sigex:${IMAGE_TAG:-0.1.0}"
docker build --network host --quiet -t "sigex:${IMAGE_TAG:-0.1.0}" \
    -f "$sigex_context/docker/Dockerfile" --build-arg PYTHON_IMAGE=sigex-local/python:3.11 \
    "$sigex_context" >/dev/null
rm -rf "$sigex_context"
say "images ready: $(docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^sigex' | tr '\n' ' ')"
