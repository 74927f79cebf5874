"""``/v1/admin/detox``: admins apply a journaled detox edit to the served model and roll it back exactly."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import torch

from eval.world.safety import load_safety_slice
from tests.server.conftest import Served, key


def _state(served: Served) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in served.agent.lm.model.state_dict().items()}  # type: ignore[attr-defined]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_admin_detox_edit_and_exact_rollback(serve: Callable[..., AbstractContextManager[Served]]) -> None:
    case = load_safety_slice().cases[0]
    body: dict[str, Any] = {
        "adversarial_input": case.adversarial_input,
        "safe_response": case.safe_response,
        "unsafe_response": case.unsafe_response,
    }
    with serve() as served:
        before = _state(served)
        url = served.url + "/v1/admin/detox"
        with httpx.Client(timeout=120) as client:
            denied = client.post(url, json=body, headers={"Authorization": f"Bearer {key('alice')}"})
            assert denied.status_code == 403 and _same(before, _state(served))
            admin = {"Authorization": f"Bearer {key('root')}"}
            bad = client.post(url, json={**body, "unsafe_response": None}, headers=admin)
            assert bad.status_code == 422 and _same(before, _state(served))  # DINM cannot locate without it
            done = client.post(url, json=body, headers=admin)
            assert done.status_code == 200, done.text
            edit = done.json()
            assert edit["method"] == "dinm" and isinstance(edit["layer"], int)
            assert not _same(before, _state(served))
            undone = client.post(f"{url}/{edit['edit_id']}/rollback", headers=admin)
            assert undone.status_code == 200 and _same(before, _state(served))
            again = client.post(f"{url}/{edit['edit_id']}/rollback", headers=admin)
            assert again.status_code == 404
