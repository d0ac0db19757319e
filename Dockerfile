# The Drone plugin image: `cc-ci run` with the plugin's extra, as a non-root user.
#
# Build it from a wheelhouse (no index is asked during the build):
#
#   pip wheel --wheel-dir wheelhouse '.[plugin]'
#   docker build -t cc-ci-plugin \
#     --build-arg SOCKET_GID="$(getent group ci-warm | cut -d: -f3)" \
#     --build-arg DOCKER_GID="$(stat -c %g /var/run/docker.sock)" .
#
# Build arguments (docs/operating.md has the table):
#   BASE_IMAGE    a Debian-like image with python3 (>= 3.11) and its venv module; the CI tests build
#                 one locally (debootstrap + docker import), so no registry is needed
#   APT_PACKAGES  installed with apt-get when not empty: git (the plugin checks out recipes) and
#                 tini (PID 1) are required; empty when the base already has them
#   ABRA_URL, ABRA_SHA256  the abra binary at a pinned version, checked against its sha256;
#                 empty = no abra (then run the swarm deployer, PLUGIN_DEPLOYER=swarm, which needs a
#                 docker CLI with `docker stack config` in the base)
#   PLUGIN_UID    the uid the plugin runs as (it must be able to write the runs and apps dirs)
#   SOCKET_GID    its primary group: the host agent's socket group (`ci-warm`). The agent admits a
#                 peer whose primary gid or supplementary groups (as the kernel recorded them,
#                 SO_PEERGROUPS) hold the group, so a launcher that adds it at run time
#                 (`docker run --group-add <gid>`) needs no match here. Drone's docker runner has
#                 no such step option, so the image's user carries the group: keep it matching
#                 (it is also the only way on a kernel older than 4.13, where the agent, finding no
#                 host account for this uid, sees only the primary gid)
#   DOCKER_GID    a supplementary group: the Docker socket's group on the host ("" = none; then the
#                 socket must be reachable through SOCKET_GID, or build with PLUGIN_UID=0)
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
COPY wheelhouse /tmp/wheelhouse
RUN python3 -m venv /opt/cc-ci \
 && /opt/cc-ci/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse \
      'cc-ci[plugin]' \
 && /opt/cc-ci/bin/cc-ci --version

FROM ${BASE_IMAGE}
# Each argument is declared just before the step that reads it: a change rebuilds from there on.
ARG APT_PACKAGES="git ca-certificates tini"
RUN if [ -n "$APT_PACKAGES" ]; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $APT_PACKAGES \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && git --version \
 && /usr/bin/tini --version

# abra, pinned: the download must have the sha256 given, or the build fails.
ARG ABRA_URL=""
ARG ABRA_SHA256=""
RUN if [ -n "$ABRA_URL" ]; then \
      [ -n "$ABRA_SHA256" ] || { echo "ABRA_URL needs ABRA_SHA256" >&2; exit 2; }; \
      python3 -c 'import sys, urllib.request as u; u.urlretrieve(sys.argv[1], sys.argv[2])' \
        "$ABRA_URL" /usr/local/bin/abra \
      && echo "$ABRA_SHA256  /usr/local/bin/abra" | sha256sum -c - \
      && chmod 0755 /usr/local/bin/abra \
      && abra --version; \
    fi

COPY --from=build /opt/cc-ci /opt/cc-ci

# The recipes and the CI repository are mounted from the host, owned by someone else: git must
# not refuse them as "dubious ownership".
ARG PLUGIN_UID=10001
ARG SOCKET_GID=10001
ARG DOCKER_GID=""
RUN git config --system --add safe.directory '*' \
 && if [ "$PLUGIN_UID" != 0 ]; then \
      group="$(getent group "$SOCKET_GID" | cut -d: -f1)"; \
      [ -n "$group" ] || { groupadd --gid "$SOCKET_GID" ci-warm && group=ci-warm; }; \
      extra=""; \
      if [ -n "$DOCKER_GID" ] && [ "$DOCKER_GID" != "$SOCKET_GID" ]; then \
        extra="$(getent group "$DOCKER_GID" | cut -d: -f1)"; \
        [ -n "$extra" ] || { groupadd --gid "$DOCKER_GID" docker-host && extra=docker-host; }; \
      fi; \
      useradd --uid "$PLUGIN_UID" --gid "$group" ${extra:+--groups "$extra"} \
        --create-home --shell /usr/sbin/nologin ccci; \
    fi

ENV PATH=/opt/cc-ci/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER ${PLUGIN_UID}
# tini is PID 1, not Python: the kernel drops a signal PID 1 has no handler for, so a SIGTERM
# (Drone's cancel) arriving before cc-ci set its handlers would wait out the stop timeout, and
# orphaned grandchildren would stay zombies. tini forwards the signal to cc-ci alone (no -g: a
# teardown's own `docker stack rm` must not be killed) and reaps the rest.
ENTRYPOINT ["/usr/bin/tini", "--", "cc-ci", "run"]
