# Stand-in for the official restic/restic image: Debian's restic package on the
# debootstrapped Debian base, with restic as the entrypoint like the official one.
# Built by tests/images/build.py, which passes BASE and provides ca-bundle.crt.
ARG BASE
FROM ${BASE}

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends restic \
 && rm -rf /var/lib/apt/lists/*

ENTRYPOINT ["restic"]
