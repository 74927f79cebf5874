"""Edited variants of a reference model (the population that kinship-guided merging consolidates), and their
fitness on the reference world.

**Variants** (:func:`build_variants`): the world's EDITS that the unedited model answers with the old object
(``eval.editing.select_cases``, ``select="known"``) are shuffled with ``seed`` and cut into ``n`` disjoint
batches of ``edits`` each; variant ``i`` is the base model with batch ``i`` applied by one weight editor
(sequentially for ROME / FT; as one batch for MEMIT and AlphaEdit, :data:`BATCHED`) and saved as a plain HF
directory. The whole population is written to a temporary sibling directory and renamed onto ``out`` when
complete, with ``population.json`` (base, method, seed, the editor's hyperparameter overrides, each variant's
edit ids and seconds: two populations built with different settings differ in their files). A MEMIT or
AlphaEdit variant also keeps its solve's Gram data (its edits' keys and the shared ``λ C`` part) beside its
weights, which the ``regmean`` merge needs (:func:`tools.merge.save_edit_grams`).

Only editors whose edit is a change of the model's own weights (:class:`~tools.edit.WeightDelta`: ROME,
MEMIT, AlphaEdit, FT-L, FT-M) can be merged: GRACE keeps a codebook and WISE a side memory with a router in adapter
modules that wrap a layer; mergekit's architecture definitions (and the delta arithmetic of every merge
method) know only the architecture's tensors, so those edits would be dropped by any merge
(:data:`NOT_MERGEABLE`).

**Fitness** (:class:`WorldFitness`, ``--fitness world:dev``), all greedy generation, exact match:

* ``edit_reliability`` — the union of all variants' edits: the edit prompt answered with the new object;
* ``locality`` — one neighbourhood prompt per edit (none about an edited subject): the answer equals the
  unedited base model's answer (KnowEdit's agreement);
* ``known_accuracy`` — a seeded sample of the world's dev ``known`` questions (none about an edited subject)
  answered with the true object;
* ``fitness`` — the mean of the three.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import InvalidInputError, OutputExistsError, WorldFormatError
from tools.merge import Fitness

__all__ = ["MERGEABLE", "NOT_MERGEABLE", "Population", "Variant", "WorldFitness", "build_variants", "load_population"]
logger = logging.getLogger(__name__)

POPULATION_FILE = "population.json"
MERGEABLE = frozenset({"rome", "memit", "alphaedit", "lora", "ft-l", "ft-m"})
BATCHED = frozenset({"memit", "alphaedit"})  # editors that solve a variant's whole batch at once
GRAM_EDITORS = BATCHED  # editors whose solve has a Gram matrix (RegMean: ``record_grams``)
NOT_MERGEABLE = {
    "grace": "GRACE's edits live in a codebook adapter wrapping one layer, not in the model's tensors",
    "wise": "WISE's edits live in a side memory with a router (an adapter), not in the model's tensors",
    "wise-retrieve": "WISE's edits live in side memories with a router (an adapter), not in the model's tensors",
    "ike": "IKE's edits are demonstrations prepended to the inputs (a context adapter), not the model's tensors",
    "serac": "SERAC's edits live in an edit memory with a scope classifier (an adapter), not in the model's tensors",
}


@dataclass(frozen=True)
class Variant:
    """One edited variant: its directory name, the world edit ids it holds, and the editing wall time."""

    name: str
    edit_ids: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class Population:
    """A population directory: the base model, the editor, the seed, the variants (``root / name``) and the
    editor's hyperparameter overrides it was built with (``{}``: the editor's defaults of that time; a
    population written before they were recorded reads as ``{}`` too)."""

    root: Path
    base: Path
    method: str
    seed: int
    variants: tuple[Variant, ...]
    hparams: Mapping[str, Any] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return [self.root / v.name for v in self.variants]

    @property
    def edit_ids(self) -> list[str]:
        """The union of all variants' edits, in variant order."""
        return [e for v in self.variants for e in v.edit_ids]

    def to_json(self) -> dict[str, Any]:
        return {
            "base": str(self.base),
            "method": self.method,
            "seed": self.seed,
            "hparams": dict(self.hparams),
            "variants": [{"name": v.name, "edit_ids": list(v.edit_ids), "seconds": v.seconds} for v in self.variants],
        }


def load_population(root: str | Path) -> Population:
    """Read ``population.json`` of a directory written by :func:`build_variants`.

    Raises:
        WorldFormatError: the file is missing or malformed.
    """
    root = Path(root)
    try:
        data = json.loads((root / POPULATION_FILE).read_text(encoding="utf-8"))
        variants = tuple(
            Variant(name=v["name"], edit_ids=tuple(v["edit_ids"]), seconds=float(v["seconds"]))
            for v in data["variants"]
        )
        hparams = data.get("hparams", {})
        if not isinstance(hparams, dict):
            raise TypeError(f"hparams must be an object, got {type(hparams).__name__}")
        return Population(
            root=root,
            base=Path(data["base"]),
            method=data["method"],
            seed=int(data["seed"]),
            variants=variants,
            hparams=hparams,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WorldFormatError(f"{root}: not a population directory ({POPULATION_FILE}: {exc})") from exc


def check_mergeable(method: str) -> str:
    """The editor name, lower-cased, if its edits can be merged; else :class:`InvalidInputError` saying why."""
    name = method.strip().lower()
    if name in NOT_MERGEABLE:
        raise InvalidInputError(f"{name} variants cannot be merged: {NOT_MERGEABLE[name]}")
    if name not in MERGEABLE:
        raise InvalidInputError(f"unknown or unmergeable editor {method!r} (mergeable: {', '.join(sorted(MERGEABLE))})")
    return name


def build_variants(
    base: Path,
    out: Path,
    *,
    n: int,
    edits: int,
    method: str = "rome",
    seed: int = 0,
    cache_dir: Path | None = None,
    on_edit: Callable[[int], None] | None = None,
    hparams: Mapping[str, Any] | None = None,
) -> Population:
    """Build ``n`` variants of ``base``, each with a disjoint batch of ``edits`` world edits (module docstring).

    ``hparams`` overrides the editor's hyperparameters (``get_editor``'s keywords, e.g. ``{"kl_factor": 1.0}``).

    Raises:
        OutputExistsError: ``out`` exists (left untouched).
        InvalidInputError: ``n`` or ``edits`` < 1, an unmergeable editor, or too few qualifying edits.
        ModelLoadError: ``base`` cannot be loaded.
    """
    from eval.editing import select_cases, world_edit_cases
    from eval.world import DATA_DIR, load_world
    from tools.edit import get_editor, load_edited
    from tools.merge import save_edit_grams

    if out.exists():
        raise OutputExistsError(f"{out} already exists: choose a new output directory")
    if n < 1 or edits < 1:
        raise InvalidInputError(f"n and edits must be >= 1, got {n} and {edits}")
    name = check_mergeable(method)
    world = load_world(DATA_DIR)
    lm = load_edited(base)
    chosen = select_cases(lm, world_edit_cases(world, lm.prompt_format), n * edits, seed=seed, select="known")
    if len(chosen) < n * edits:
        raise InvalidInputError(f"only {len(chosen)} world edits qualify, {n} x {edits} asked")
    # the closed-form editors keep each solve's Gram matrix for the regmean merge (off elsewhere: it costs memory)
    grams_on = {"record_grams": True} if name in GRAM_EDITORS else {}
    settings = {**grams_on, **(hparams or {})}
    editor = get_editor(name, corpus=[d.text for d in world.documents], cache_dir=cache_dir, **settings)
    batch_size = edits if name in BATCHED else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    variants: list[Variant] = []
    try:
        for i in range(n):
            batch = chosen[i * edits : (i + 1) * edits]
            lm = load_edited(base)
            start = time.perf_counter()
            grams = []
            for lo in range(0, len(batch), batch_size):
                delta = editor.compute(lm, [c.request for c in batch[lo : lo + batch_size]])
                editor.apply(lm, delta)
                if delta.info.get("grams"):
                    grams.append(delta.info["grams"])
                if on_edit:
                    on_edit(min(batch_size, len(batch) - lo))
            seconds = time.perf_counter() - start
            vdir = tmp / f"v{i:02d}"
            lm.model.save_pretrained(vdir, safe_serialization=True)  # a plain HF directory: no journal files
            lm.tokenizer.save_pretrained(vdir)
            lm.prompt_format.save(vdir)
            if len(grams) == 1:  # one closed-form batch per variant (MEMIT, AlphaEdit): what RegMean merges by
                save_edit_grams(vdir, grams[0], editor=name)
            variants.append(Variant(name=vdir.name, edit_ids=tuple(c.id for c in batch), seconds=seconds))
        population = Population(
            root=out, base=base, method=name, seed=seed, variants=tuple(variants), hparams=dict(hparams or {})
        )
        (tmp / POPULATION_FILE).write_text(json.dumps(population.to_json(), indent=2) + "\n", encoding="utf-8")
        if out.exists():
            raise OutputExistsError(f"{out} appeared while building: the variants are discarded")
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return population


class WorldFitness:
    """Fitness of a model directory on the reference world (module docstring): edit reliability over
    ``edit_ids``, locality against ``base``, and known accuracy on ``n_known`` dev questions.

    Args:
        base: the unedited model (locality compares with its answers).
        edit_ids: the world edit ids whose success is measured (the union of the population's edits).
        n_known: dev known questions sampled (seeded).
        seed: sampling seed.
        answer_tokens: greedy tokens generated per prompt.

    Raises:
        InvalidInputError: an edit id the world does not have.
    """

    def __init__(
        self, base: Path, edit_ids: Sequence[str], *, n_known: int = 150, seed: int = 0, answer_tokens: int = 12
    ) -> None:
        from eval.world import DATA_DIR, load_world
        from tools.lm import PromptFormat

        world = load_world(DATA_DIR)
        by_id = {e.id: e for e in world.edits}
        missing = [e for e in edit_ids if e not in by_id]
        if missing:
            raise InvalidInputError(f"unknown world edit ids: {', '.join(missing[:5])}")
        edits = [by_id[e] for e in edit_ids]
        subjects = {e.subject for e in edits}
        fmt = PromptFormat.load(base)
        self.answer_tokens = answer_tokens
        self.edit_prompts = [(e.prompt, e.new_object) for e in edits]
        self.locality_prompts = []
        for e in edits:
            probe = next((p for p in e.neighbourhood if not any(s in p.text for s in subjects)), None)
            if probe is not None:
                self.locality_prompts.append(probe.text)
        questions = [q for q in world.questions_in("dev", "known") if q.subject not in subjects]
        random.Random(seed).shuffle(questions)
        self.known = [(fmt.question(q.text), q.answers) for q in questions[:n_known]]
        self.base_locality = self._answers(base, self.locality_prompts)

    def _answers(self, model_dir: Path, prompts: Sequence[str]) -> list[str]:
        from tools.lm import HFLanguageModel

        lm = HFLanguageModel.load(model_dir)  # device and dtype: the best available
        return [g.text for g in lm.generate(list(prompts), max_new_tokens=self.answer_tokens)]

    def __call__(self, model_dir: Path) -> Fitness:
        from eval.editing import answer_matches

        prompts = [p for p, _ in self.edit_prompts] + self.locality_prompts + [p for p, _ in self.known]
        got = self._answers(model_dir, prompts)
        n_e, n_l = len(self.edit_prompts), len(self.locality_prompts)
        rel = _mean([answer_matches(g, t) for g, (_, t) in zip(got[:n_e], self.edit_prompts, strict=True)])
        loc = _mean([g.strip() == b.strip() for g, b in zip(got[n_e : n_e + n_l], self.base_locality, strict=True)])
        known = _mean(
            [any(answer_matches(g, a) for a in ans) for g, (_, ans) in zip(got[n_e + n_l :], self.known, strict=True)]
        )
        return Fitness(fitness=(rel + loc + known) / 3, edit_reliability=rel, locality=loc, known_accuracy=known)


def _mean(values: Sequence[bool]) -> float:
    return sum(values) / len(values) if values else 0.0
