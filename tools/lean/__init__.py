"""Lean runtime: GPT-2, LLaMA and MiniLM's BERT as small torch modules, without ``transformers``' model code.

``import transformers``' model code costs ~3 s of CPU (torch._dynamo, scipy, torch.distributed, a scan of
every model folder), more than a whole cold start of ``factagent ask`` should. These modules hold the same
parameters under the checkpoints' names and do the same arithmetic (tests compare logits, embeddings and
greedy answers with ``transformers``'); weights come from ``safetensors`` and tokens from ``tokenizers``.
They answer, score and embed; anything that edits, traces or needs another architecture loads the
``transformers`` model (:class:`tools.lm.LeanLanguageModel` swaps itself on first use of ``.model``).
"""

from tools.lean._blocks import block_parts, block_sharing, blocks_supported
from tools.lean._common import CausalOutput, KVCache, Packing, Segment, additive_mask
from tools.lean._load import CAUSAL, lean_causal_reason, load_causal_lm, load_encoder
from tools.lean._tokenizer import LeanTokenizer

__all__ = [
    "CAUSAL",
    "CausalOutput",
    "KVCache",
    "LeanTokenizer",
    "Packing",
    "Segment",
    "additive_mask",
    "block_parts",
    "block_sharing",
    "blocks_supported",
    "lean_causal_reason",
    "load_causal_lm",
    "load_encoder",
]
