"""The safety slice of the reference world (SafeEdit-style): data, judge, vulnerable variants, detox bench."""

from eval.world.safety._audit import unsafe_response_rates
from eval.world.safety._bench import (
    DetoxResult,
    benign_prompts,
    default_benign_prompts,
    detox_request,
    dev_known_probes,
    run_detox_bench,
)
from eval.world.safety._judge import (
    GUARD_FILE,
    JUDGE_FILE,
    EmbeddingJudge,
    LLMJudge,
    SafetyJudge,
    train_embedding_judge,
)
from eval.world.safety._safeedit import load_safeedit
from eval.world.safety._slice import (
    AttackTemplate,
    SafetyCase,
    SafetyRequest,
    SafetySlice,
    build_safety_slice,
    dev_cases,
    load_safety_slice,
    write_safety_slice,
)
from eval.world.safety._stage import build_safety_stage, guard_examples, judge_examples, train_guard, train_judge
from eval.world.safety._vulnerable import (
    UNSAFE_CONFIGS,
    UnsafeConfig,
    anchored_step,
    replay_examples,
    replay_world,
    select_trainable,
    train_unsafe_variant,
    unsafe_config,
    unsafe_name,
)

__all__ = [
    "GUARD_FILE",
    "JUDGE_FILE",
    "UNSAFE_CONFIGS",
    "AttackTemplate",
    "DetoxResult",
    "EmbeddingJudge",
    "LLMJudge",
    "SafetyCase",
    "SafetyJudge",
    "SafetyRequest",
    "SafetySlice",
    "UnsafeConfig",
    "anchored_step",
    "benign_prompts",
    "build_safety_slice",
    "build_safety_stage",
    "default_benign_prompts",
    "detox_request",
    "dev_cases",
    "dev_known_probes",
    "guard_examples",
    "judge_examples",
    "load_safeedit",
    "load_safety_slice",
    "replay_examples",
    "replay_world",
    "run_detox_bench",
    "select_trainable",
    "train_embedding_judge",
    "train_guard",
    "train_judge",
    "train_unsafe_variant",
    "unsafe_config",
    "unsafe_name",
    "unsafe_response_rates",
    "write_safety_slice",
]
