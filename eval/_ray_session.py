"""One Ray session for the distributed engines (audit batches, edit-bench cells): join or start a cluster.

``address`` joins an existing cluster (``ray start --head`` elsewhere, or ``auto``); without it a local
cluster with ``workers`` CPUs is started for the run and stopped after it. A Ray session already open in this
process (a test, a notebook) is used as is and left open. ``ray`` is imported here only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tools.errors import ClusterError, FactagentError

__all__ = ["ray_session", "start_ray", "unwrap_ray_error"]

_log = logging.getLogger(__name__)
START_ATTEMPTS = 3  # Ray waits a fixed 30 s for its raylet to register; on a loaded machine that can lapse
# What Ray's bare Exception says when a local start lapses: the raylet did not register, or the GCS did not
# write its port file in time (both seen on a loaded 2-core CI machine; a fresh start succeeds).
STARTUP_LAPSES = ("timed out during startup", "Timed out waiting for file")


def start_ray(ray: Any, workers: int, address: str | None = None, attempts: int = START_ATTEMPTS) -> None:
    """``ray.init`` for a local cluster of ``workers`` CPUs (or joining ``address``), retried when startup lapses.

    Ray raises a bare ``Exception`` ("The current node timed out during startup") when its raylet does not
    register with the GCS within a hard-coded 30 s, or ("Timed out waiting for file .../gcs_server_port_...")
    when the GCS does not write its port in time; both happen on a 2-core machine under load and a fresh
    start usually succeeds, so a start that lapses (:data:`STARTUP_LAPSES`) is shut down and tried again.

    Raises:
        ClusterError: the cluster could not be started or joined after ``attempts`` tries.
    """
    last: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            return
        except Exception as exc:  # Ray's startup timeout is a bare Exception; any other failure is not retried
            if not any(lapse in str(exc) for lapse in STARTUP_LAPSES):
                raise ClusterError(f"cannot start or join the Ray cluster {address or '(local)'}: {exc}") from exc
            last = exc
            _log.warning("Ray did not start in time (attempt %d of %d); starting it again", attempt, attempts)
            ray.shutdown()
    raise ClusterError(f"cannot start or join the Ray cluster {address or '(local)'}: {last}") from last


@contextmanager
def ray_session(workers: int, address: str | None = None) -> Iterator[Any]:
    """The ``ray`` module with a cluster connected for the block.

    Raises:
        ClusterError: ray is not installed, ``workers`` < 1, or the cluster at ``address`` cannot be joined.
    """
    try:
        import ray
    except ImportError as exc:
        raise ClusterError("the ray engine needs ray: pip install 'factagent[ray]'") from exc
    if workers < 1:
        raise ClusterError(f"workers must be >= 1, got {workers}")
    started_here = not ray.is_initialized()
    if started_here:
        start_ray(ray, workers, address)
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def unwrap_ray_error(exc: BaseException, what: str) -> FactagentError:
    """The factagent error a Ray worker raised, else a :class:`ClusterError` naming ``what`` failed."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, FactagentError):
        return cause
    return ClusterError(f"a Ray worker failed while {what}: {cause or exc}")
