# A Python 3.11 base from Debian's packages (stands in for python:3.11-slim-bookworm).
ARG BASE
FROM ${BASE}
COPY ca-certificates.crt /usr/local/share/ca-certificates/build-host.crt
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        python3 python3-venv python3-pip ca-certificates \
 && update-ca-certificates >/dev/null \
 && ln -sf /usr/bin/python3 /usr/local/bin/python \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
