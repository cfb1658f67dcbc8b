"""A worker node's Ray settings: its raylet keeps an idle worker process per attempt slot on top
of Ray's default (one per CPU), so one wave of attempts' workers are still there for the next
(Ray kills idle workers past the limit a second after they finish, and every new one imports
Ray and blitz again). ``blitz worker`` sets it (the raylet's environment: checked on a real node
in test_worker_node), unless the user set it."""

from __future__ import annotations

import os
from pathlib import Path

from blitz.executors.ray.resources import KEEP_WORKERS_ENV, node_settings
from blitz.executors.ray.worker import node_env, num_cpus


def test_a_node_keeps_a_worker_per_slot_besides_one_per_cpu() -> None:
    assert node_settings(4, cpus=1) == {KEEP_WORKERS_ENV: "5"}
    assert node_settings(2, cpus=8) == {KEEP_WORKERS_ENV: "10"}
    assert node_settings(3, cpus=0) == {KEEP_WORKERS_ENV: "4"}  # a node of no CPU still has one
    assert node_settings(3) == {KEEP_WORKERS_ENV: str(3 + (os.cpu_count() or 1))}


def test_blitz_worker_gives_its_node_the_setting_for_its_slots_and_cpus(tmp_path: Path) -> None:
    env = node_env(tmp_path, "m", {"PATH": "/bin"}, slots=4, ray_args=["--num-cpus", "2"])
    assert env[KEEP_WORKERS_ENV] == "6"
    env = node_env(tmp_path, "m", {}, slots=4, ray_args=["--num-cpus=1", "--block"])
    assert env[KEEP_WORKERS_ENV] == "5"
    env = node_env(tmp_path, "m", {}, slots=2)  # ray start counts this machine's CPUs
    assert env[KEEP_WORKERS_ENV] == str(2 + (os.cpu_count() or 1))


def test_the_users_own_setting_wins(tmp_path: Path) -> None:
    env = node_env(tmp_path, "m", {KEEP_WORKERS_ENV: "64"}, slots=4, ray_args=["--num-cpus", "1"])
    assert env[KEEP_WORKERS_ENV] == "64"


def test_the_cpus_are_read_from_ray_starts_arguments() -> None:
    assert num_cpus(["--num-cpus", "3", "--temp-dir", "/tmp/x"]) == 3
    assert num_cpus(["--num-cpus=2"]) == 2
    assert num_cpus(["--temp-dir", "/tmp/x"]) is None
    assert num_cpus(["--num-cpus"]) is None  # ray start says what is missing
    assert num_cpus(["--num-cpus", "many"]) is None
