"""``edit-bench --engine ray``: one Ray task per (method, T) cell, each editing its own fresh copy of the model.

A cell is exactly what :func:`run_edit_bench` computes for one method and one T in this process, so the rows
are the same as a local run's (up to the measured seconds and memory). Each cell's rows come back in the
order the cells were asked for. If any task raises, the run fails with that error and no rows are
returned: a partial table is never presented as complete.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eval._ray_session import ray_session, unwrap_ray_error

__all__ = ["run_cells_ray"]


def _cell(kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    from eval.editing._runner import run_edit_bench

    return run_edit_bench(**kwargs)


def run_cells_ray(
    cells: Sequence[Mapping[str, Any]],
    *,
    workers: int,
    address: str | None = None,
    on_cell: Callable[[int], None] | None = None,
) -> list[list[dict[str, Any]]]:
    """Run each cell (keyword arguments of :func:`run_edit_bench`) as a Ray task; each cell's rows, in cell order.

    Args:
        cells: one mapping of ``run_edit_bench`` keyword arguments per cell (no callbacks: they cannot
            cross processes).
        workers: CPUs of the local cluster started for the run (ignored when joining ``address``).
        address: an existing Ray cluster to join.
        on_cell: called with the index of each cell as it finishes (progress).

    Raises:
        ClusterError: ray is missing, the cluster cannot be joined, or a worker died.
        FactagentError: what a cell raised (an unknown method, too few edits, a model that does not load).
    """
    with ray_session(workers, address) as ray:
        task: Any = ray.remote(num_cpus=1, max_retries=0)(_cell)
        refs = [task.remote(dict(cell)) for cell in cells]
        index = {ref: i for i, ref in enumerate(refs)}
        results: dict[int, list[dict[str, Any]]] = {}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    results[index[ready[0]]] = ray.get(ready[0])
                except ray.exceptions.RayError as exc:
                    raise unwrap_ray_error(exc, "running an edit-bench cell") from exc
                if on_cell is not None:
                    on_cell(index[ready[0]])
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
    return [results[i] for i in range(len(cells))]
