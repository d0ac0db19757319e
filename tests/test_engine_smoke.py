"""Prove the real engine, in swarm mode, runs what the suite needs."""

from __future__ import annotations

import time
import uuid

import docker
import pytest

pytestmark = pytest.mark.docker


def test_volume_and_one_task_service_round_trip(
    docker_client: docker.DockerClient, busybox_image: str
) -> None:
    """A volume and a one-task swarm service from the local image come up and go away."""
    name = f"ccci-smoke-{uuid.uuid4().hex[:8]}"
    volume = docker_client.volumes.create(name)
    service = docker_client.services.create(
        busybox_image,
        command=["sh", "-c", "echo hello > /data/greeting && exec sleep 600"],
        name=name,
        mounts=[docker.types.Mount(target="/data", source=name, type="volume")],
        stop_grace_period=1_000_000_000,
    )
    try:
        for _ in range(120):
            states = [t["Status"]["State"] for t in service.tasks()]
            if "running" in states:
                break
            time.sleep(0.5)
        assert ["running"] == [t["Status"]["State"] for t in service.tasks()]
        container = docker_client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={name}"}
        )[0]
        assert (0, b"hello\n") == tuple(container.exec_run(["cat", "/data/greeting"]))
    finally:
        service.remove()
        for _ in range(120):
            if not docker_client.containers.list(
                all=True, filters={"volume": name}, ignore_removed=True
            ):
                break
            time.sleep(0.5)
        volume.remove()
    assert [] == docker_client.volumes.list(filters={"name": name})
    assert [] == docker_client.services.list(filters={"name": name})
