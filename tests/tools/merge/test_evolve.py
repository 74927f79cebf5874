"""Top-k greedy merging with kinship exploration: the selection rules on a population whose models are sets of
"skills" (merge = union; fitness rewards skills and punishes size; kinship = overlap of the sets)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from tools.errors import InvalidInputError
from tools.merge import Fitness, evolve, plot_lineage


def _skills(path: Path) -> set[str]:
    return set(json.loads((path / "skills.json").read_text()))


def _model(path: Path, skills: set[str]) -> Path:
    path.mkdir(parents=True)
    (path / "skills.json").write_text(json.dumps(sorted(skills)))
    return path


def _merge(parents: Sequence[Path], out: Path) -> Path:
    return _model(out, set().union(*(_skills(p) for p in parents)))


def _kinship(a: Path, b: Path) -> float:
    sa, sb = _skills(a), _skills(b)
    return len(sa & sb) / len(sa | sb)


def _fitness(path: Path) -> Fitness:
    s = _skills(path)
    score = len(s - {"bad"}) / 10 - (0.5 if "bad" in s else 0.0)
    return Fitness(fitness=score, edit_reliability=score, locality=1.0, known_accuracy=1.0)


@pytest.fixture
def population(tmp_path: Path) -> list[Path]:
    # three similar models on top, a dissimilar one below them and a harmful one
    specs = [{"a", "b"}, {"a", "c"}, {"a", "b", "c"}, {"x"}, {"bad"}]
    return [_model(tmp_path / "pop" / f"v{i}", s) for i, s in enumerate(specs)]


def test_exploration_merges_best_with_lowest_kinship(population: list[Path], tmp_path: Path) -> None:
    result = evolve(
        population, workdir=tmp_path / "w1", fitness=_fitness, merge=_merge, kinship=_kinship, k=3, generations=2
    )
    gen1 = [n for n in result.nodes if n.generation == 1]
    assert {frozenset(n.parents) for n in gen1 if n.how == "top_k"} == {
        frozenset(p) for p in (("v0", "v1"), ("v0", "v2"), ("v1", "v2"))
    }
    explore = [n for n in result.nodes if n.how == "explore"]
    assert explore, "the top-3 merges all equal {a, b, c}: the search stalls and must explore"
    assert explore[0].parents == ("v2", "v3")  # the best (first of equals) and its first kinship-0 partner
    assert explore[0].kinship == 0.0
    assert _skills(Path(result.best.path)) == {"a", "b", "c", "x"}
    assert result.generations[0]["generation"] == 0 and len(result.generations) == 3

    greedy = evolve(
        population, workdir=tmp_path / "w2", fitness=_fitness, merge=_merge, kinship=_kinship, k=3, generations=2,
        explore=False,
    )  # fmt: skip
    assert all(n.how != "explore" for n in greedy.nodes)
    assert greedy.best.fitness.fitness < result.best.fitness.fitness  # stuck at {a, b, c}
    out = plot_lineage({"explore": result, "greedy": greedy}, tmp_path / "lineage.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(json.dumps(result.to_json()))["best"]["name"] == result.best.name


def test_bad_arguments(population: list[Path], tmp_path: Path) -> None:
    for k, generations in ((1, 1), (2, 0)):
        with pytest.raises(InvalidInputError):
            evolve(
                population, workdir=tmp_path, fitness=_fitness, merge=_merge, kinship=_kinship, k=k,
                generations=generations,
            )  # fmt: skip
    with pytest.raises(InvalidInputError):
        evolve(population[:1], workdir=tmp_path, fitness=_fitness, merge=_merge, kinship=_kinship)


def test_merges_take_the_union_of_members_once(tmp_path: Path) -> None:
    pop = [_model(tmp_path / "pop" / f"v{i}", {f"s{i}"}) for i in range(4)]
    calls: list[list[str]] = []

    def merge(parents: Sequence[Path], out: Path) -> Path:
        calls.append([p.name for p in parents])
        return _merge(parents, out)

    result = evolve(pop, workdir=tmp_path / "w", fitness=_fitness, merge=merge, kinship=_kinship, k=3, generations=4)
    assert calls and all(set(c) <= {"v0", "v1", "v2", "v3"} and len(c) == len(set(c)) for c in calls)
    member_sets = [frozenset(n.members) for n in result.nodes]
    assert len(member_sets) == len(set(member_sets))  # a merge that makes no new member set is skipped
    assert set(result.best.members) == {"v0", "v1", "v2", "v3"} and _fitness(Path(result.best.path)).fitness == 0.4
    for node in result.nodes:
        if node.parents:
            a, b = (next(n for n in result.nodes if n.name == p) for p in node.parents)
            assert set(node.members) == set(a.members) | set(b.members)

    calls.clear()
    evolve(
        pop, workdir=tmp_path / "w2", fitness=_fitness, merge=merge, kinship=_kinship, k=3, generations=2,
        merge_members=False,
    )  # fmt: skip
    assert any(c[0].startswith("g") for c in calls)  # the parent models themselves
