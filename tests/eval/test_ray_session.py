"""``start_ray``: Ray's startup timeout (a bare ``Exception`` after 30 s) is retried; other failures are typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from eval._ray_session import start_ray
from tools.errors import ClusterError

LAPSE = "The current node timed out during startup. This could happen because some of the raylet failed to startup"
GCS_LAPSE = "Timed out waiting for file /tmp/ray/session_2026-12-07_05-59-53_501613_20649/gcs_server_port_e36d5544"


@dataclass
class FakeRay:
    """Fails the first ``failures`` inits with ``error``, then starts; counts inits and shutdowns."""

    failures: int
    error: BaseException = field(default_factory=lambda: Exception(LAPSE))
    inits: list[dict[str, Any]] = field(default_factory=list)
    shutdowns: int = 0

    def init(self, **kwargs: Any) -> None:
        self.inits.append(kwargs)
        if len(self.inits) <= self.failures:
            raise self.error

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_a_lapsed_start_is_shut_down_and_tried_again() -> None:
    ray = FakeRay(failures=2)
    start_ray(ray, workers=2)
    assert len(ray.inits) == 3 and ray.shutdowns == 2
    assert ray.inits[-1]["num_cpus"] == 2


def test_a_gcs_that_does_not_write_its_port_in_time_is_a_lapse_too() -> None:
    ray = FakeRay(failures=1, error=Exception(GCS_LAPSE))
    start_ray(ray, workers=2)
    assert len(ray.inits) == 2 and ray.shutdowns == 1


def test_a_start_that_keeps_lapsing_is_a_cluster_error() -> None:
    ray = FakeRay(failures=5)
    with pytest.raises(ClusterError, match="timed out during startup"):
        start_ray(ray, workers=1, attempts=3)
    assert len(ray.inits) == 3


@pytest.mark.parametrize("error", [ConnectionError("refused"), Exception("something else")])
def test_other_failures_are_not_retried(error: BaseException) -> None:
    ray = FakeRay(failures=1, error=error)
    with pytest.raises(ClusterError, match="cannot start or join"):
        start_ray(ray, workers=1, address="10.0.0.1:6379")
    assert len(ray.inits) == 1 and ray.inits[0]["address"] == "10.0.0.1:6379"
