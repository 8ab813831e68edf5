# A Debian machine for `hubd trust` as root (tests/integration/test_trust_system.py): the
# system store (ca-certificates' update-ca-certificates), NSS's certutil, openssl, sudo (as
# a person runs it) and what `python3 -m hubd trust` imports; hubd itself is mounted at run
# time, not built in.
# Built by tests/images/build.py, which passes BASE and provides ca-bundle.crt.
ARG BASE
FROM ${BASE}

# The proxy's CA for pip alone, kept out of /usr/local/share/ca-certificates: the test
# checks what `hubd trust` puts into the system store, nothing else may be there.
COPY ca-bundle.crt /usr/local/share/hubd-test/ca-bundle.crt
ENV PIP_CERT=/usr/local/share/hubd-test/ca-bundle.crt \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates libnss3-tools openssl sudo \
 && rm -rf /var/lib/apt/lists/*

# Debian's python3-cryptography (38) is older than hubd needs (>= 42).
RUN python3 -m pip install --no-cache-dir cryptography==48.0.0 platformdirs==4.14.9

CMD ["sleep", "infinity"]
