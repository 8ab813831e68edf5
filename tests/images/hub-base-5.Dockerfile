# Stand-in for an older quay.io/jupyterhub/jupyterhub (JupyterHub 5.x): the same layout as
# hub-base.Dockerfile (so the build cache shares every layer but the last), for upgrade tests.
# Built by tests/images/build.py, which passes BASE and provides ca-bundle.crt.
ARG BASE
FROM ${BASE}

# PyPI, npm and Debian are reached through a TLS-intercepting proxy. Keep its CA
# bundle and the env in the image so that *derived* builds (hubd's own hub
# Dockerfile runs `pip install dockerspawner ...`) work without extra setup.
# PIP_BREAK_SYSTEM_PACKAGES: bookworm's python is PEP 668 "externally managed".
COPY ca-bundle.crt /usr/local/share/hubd-test/ca-bundle.crt
ENV LANG=C.UTF-8 \
    PIP_CERT=/usr/local/share/hubd-test/ca-bundle.crt \
    NODE_EXTRA_CA_CERTS=/usr/local/share/hubd-test/ca-bundle.crt \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# npm comes from apt, not debootstrap: debootstrap's resolver cannot satisfy
# npm's virtual-package dependencies, apt can.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*

# CHP 5.x needs node >= 20; bookworm ships node 18, so stay on 4.x.
RUN npm install -g configurable-http-proxy@4.6.3 \
 && rm -rf /root/.npm

RUN python3 -m pip install --no-cache-dir jupyterhub==5.4.6

WORKDIR /srv/jupyterhub
EXPOSE 8000
ENTRYPOINT ["tini", "--"]
CMD ["jupyterhub"]
