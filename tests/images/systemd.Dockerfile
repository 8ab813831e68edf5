# A Debian 12 machine with systemd as PID 1, for the README's quickstart run as written
# (`hubd service install` needs a running systemd and a user manager). It talks to the test
# machine's Docker engine through its bind-mounted socket; tests/integration/systemd_box.py
# runs it.
# Built by tests/images/build.py, which passes BASE and provides ca-bundle.crt.
ARG BASE
FROM ${BASE}

# PyPI is reached through a TLS-intercepting proxy: its CA for every pip on the machine
# (pipx's venvs included), which reads /etc/pip.conf whatever its environment.
COPY ca-bundle.crt /usr/local/share/hubd-test/ca-bundle.crt
ENV LANG=C.UTF-8 \
    container=docker

# docker.io is here so that the README's `sudo apt install -y docker.io pipx git` finds all
# three installed and downloads nothing: installed for real at test time it would start a
# second dockerd in the test machine's network namespace (this container uses the host's
# network, so that hubd reaches its proxy on 127.0.0.1 as on a real machine). Its units are
# masked below; the engine is the test machine's, through /var/run/docker.sock.
# policy-rc.d: no service starts during the build (docker.io ships an init script too).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
 && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        systemd systemd-sysv dbus libpam-systemd python3 pipx git sudo procps \
        ca-certificates docker.io \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && printf '[global]\ncert = /usr/local/share/hubd-test/ca-bundle.crt\n' > /etc/pip.conf

# Units that have no business here or would reach past the container (it is on the host's
# network, with CAP_SYS_ADMIN or privileged: tests/integration/systemd_box.py): the inner
# engine (see above), sysctl, kernel modules, binfmt, udev, gettys, and the timers of apt,
# fstrim and dpkg.
RUN systemctl mask \
        docker.service docker.socket containerd.service \
        systemd-sysctl.service systemd-modules-load.service systemd-binfmt.service \
        proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
        sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
        sys-fs-fuse-connections.mount systemd-remount-fs.service systemd-firstboot.service \
        getty.target getty@.service serial-getty@.service autovt@.service console-getty.service \
        systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
        systemd-hwdb-update.service systemd-pstore.service \
        apt-daily.timer apt-daily-upgrade.timer fstrim.timer dpkg-db-backup.timer \
        e2scrub_all.timer e2scrub_reap.service

STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
