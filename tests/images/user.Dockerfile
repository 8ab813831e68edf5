# Stand-in for quay.io/jupyter/base-notebook: a single-user server for the
# spawner to start, built on the debootstrapped Debian base.
# Built by tests/images/build.py, which passes BASE and provides ca-bundle.crt.
ARG BASE
FROM ${BASE}

# Same proxy CA / PEP 668 handling as hub-base, for derived images and users.
COPY ca-bundle.crt /usr/local/share/hubd-test/ca-bundle.crt
ENV LANG=C.UTF-8 \
    SHELL=/bin/bash \
    PIP_CERT=/usr/local/share/hubd-test/ca-bundle.crt \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NB_USER=jovyan \
    NB_UID=1000 \
    NB_GID=100 \
    HOME=/home/jovyan

# jupyterhub provides jupyterhub-singleuser; keep it equal to the hub's version.
RUN python3 -m pip install --no-cache-dir jupyterhub==6.1.1 jupyterlab==4.6.6
# As in hubd's hub image: without rfc3987-syntax, jsonschema skips building its IRI parsers at
# every import, and a JupyterLab starts on 1.2 s of CPU instead of 2.9 s (measured in this
# image). People's images have the package; what hubd does with their servers is the same, and
# the suite starts some 70 Labs on two cores.
RUN python3 -m pip uninstall -y rfc3987-syntax

# gid 100 "users" comes with Debian's base-passwd. work/ must be owned by
# jovyan in the image: Docker copies that ownership into a fresh named volume
# mounted there, which is what keeps the volume writable for the user.
RUN useradd --uid 1000 --gid 100 --no-user-group --create-home \
        --home-dir /home/jovyan --shell /bin/bash jovyan \
 && mkdir /home/jovyan/work \
 && chown -R 1000:100 /home/jovyan

USER 1000
WORKDIR /home/jovyan
EXPOSE 8888
ENTRYPOINT ["tini", "-g", "--"]
CMD ["jupyterhub-singleuser"]
