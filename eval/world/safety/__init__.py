"""The safety slice of the reference world (SafeEdit-style): data, judge, vulnerable variants, detox bench."""

from eval.world.safety._bench import DetoxResult, benign_prompts, detox_request, run_detox_bench
from eval.world.safety._judge import JUDGE_FILE, EmbeddingJudge, LLMJudge, SafetyJudge, train_embedding_judge
from eval.world.safety._safeedit import load_safeedit
from eval.world.safety._slice import (
    AttackTemplate,
    SafetyCase,
    SafetyRequest,
    SafetySlice,
    build_safety_slice,
    load_safety_slice,
    write_safety_slice,
)
from eval.world.safety._stage import build_safety_stage, judge_examples, train_judge
from eval.world.safety._vulnerable import UnsafeConfig, train_unsafe_variant, unsafe_name

__all__ = [
    "JUDGE_FILE",
    "AttackTemplate",
    "DetoxResult",
    "EmbeddingJudge",
    "LLMJudge",
    "SafetyCase",
    "SafetyJudge",
    "SafetyRequest",
    "SafetySlice",
    "UnsafeConfig",
    "benign_prompts",
    "build_safety_slice",
    "build_safety_stage",
    "detox_request",
    "judge_examples",
    "load_safeedit",
    "load_safety_slice",
    "run_detox_bench",
    "train_embedding_judge",
    "train_judge",
    "train_unsafe_variant",
    "unsafe_name",
    "write_safety_slice",
]
