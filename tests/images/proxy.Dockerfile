# Stand-in for quay.io/jupyterhub/configurable-http-proxy: the same program and layout (CHP
# on PATH, /bin/sh, running as nobody), built on the debootstrapped Debian base.
# Built by tests/images/build.py, which passes BASE and provides ca-bundle.crt.
ARG BASE
FROM ${BASE}

COPY ca-bundle.crt /usr/local/share/hubd-test/ca-bundle.crt
ENV LANG=C.UTF-8 \
    NODE_EXTRA_CA_CERTS=/usr/local/share/hubd-test/ca-bundle.crt

# npm comes from apt (debootstrap cannot resolve it); it goes again once CHP is installed.
# CHP 5.x needs node >= 20 and bookworm ships node 18, so this stays on 4.x, like hub-base.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
 && npm install -g configurable-http-proxy@4.6.3 \
 && rm -rf /root/.npm /var/lib/apt/lists/*

WORKDIR /srv/configurable-http-proxy
USER 65534
EXPOSE 8000
ENTRYPOINT ["configurable-http-proxy"]
