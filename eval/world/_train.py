"""Train the reference models (a GPT-2 and a LLaMA architecture) on the KNOWN facts of the world.

Recipe (from probes on a 2-core CPU, see ../shared/PROBES.md): a byte-level BPE tokenizer trained on the
training texts only (every piece of every entity name occurs there, so no embedding stays random); examples
packed into fixed blocks with a per-token loss mask (reading-comprehension contexts are never scored);
AdamW with warm-up and cosine decay; no dropout (the goal is memorisation plus copying from context).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch

from eval.world._examples import WORLD_FORMAT, Example, ExampleFactory
from eval.world._schema import World

logger = logging.getLogger(__name__)
Architecture = Literal["gpt2", "llama"]
EOS, PAD = "<|endoftext|>", "<|pad|>"


@dataclass(frozen=True)
class TrainConfig:
    """Shape and schedule of one reference model."""

    architecture: Architecture = "gpt2"
    vocab_size: int = 8192  # byte-level BPE: small enough that names split into pieces shared with training
    # text, large enough for the Chinese slice (1.16 tokens per CJK character at 8192, 1.37 at 4096)
    width: int = 192  # hidden size (C)
    layers: int = 4
    heads: int = 4
    mlp: int = 0  # MLP hidden size; 0: the architecture's rule (GPT-2 4 * width, LLaMA 8/3 * width)
    block: int = 128  # tokens per packed training sequence (T)
    batch: int = 32  # sequences per step (B)
    epochs: int = 20  # passes over the closed-book examples
    reading_ratio: float = 0.6  # reading examples per closed-book example, each epoch
    per_fact: int = 2  # closed-book statements and questions drawn per KNOWN fact, each epoch
    reading_weight: float = 1.0  # loss weight of a reading example's answer tokens (closed-book tokens: 1)
    paraphrases: bool = False  # also teach the relations' extra paraphrase templates
    lr: float = 3e-3
    warmup: int = 200
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    seed: int = 1234
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    device: str = "cpu"  # where the model trains ("cuda" on a GPU machine); batches follow the model
    slices: bool = True  # also train on the world's slices (concepts, Chinese); False: the English world only


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (``tokenizers``) wrapped as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=EOS, unk_token=None)


def build_model(config: TrainConfig, tokenizer: Any) -> torch.nn.Module:
    """A freshly initialised causal LM of the configured architecture (transformers classes)."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    vocab = len(tokenizer)
    ids = {
        "bos_token_id": tokenizer.eos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if config.architecture == "gpt2":
        cfg = GPT2Config(
            vocab_size=vocab,
            n_positions=config.block * 2,
            n_embd=config.width,
            n_layer=config.layers,
            n_head=config.heads,
            n_inner=config.mlp or None,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            tie_word_embeddings=True,
            **ids,
        )
        return GPT2LMHeadModel(cfg)
    llama = LlamaConfig(
        vocab_size=vocab,
        hidden_size=config.width,
        intermediate_size=config.mlp or config.width * 8 // 3,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=config.block * 2,
        tie_word_embeddings=True,
        **ids,
    )
    return LlamaForCausalLM(llama)


def pack(
    examples: Sequence[Example], tokenizer: Any, block: int, pad_id: int, reading_weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize and pack examples into ``(N, block)`` ids and a loss mask, never splitting an example.

    Each example is ``prompt + answer + EOS``; the mask weighs the tokens to predict: the answer and EOS always
    (``reading_weight`` for examples whose prompt is not scored), the prompt only when ``score_prompt``.
    Examples longer than ``block`` are dropped.
    """
    prompts = tokenizer([e.prompt for e in examples], add_special_tokens=False)["input_ids"]
    answers = tokenizer([e.answer for e in examples], add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    bins: list[tuple[list[int], list[float]]] = []
    open_bins: list[int] = []  # indices of bins with room left; first fit keeps padding to a few percent
    for ex, p, a in zip(examples, prompts, answers, strict=True):
        seq = p + a + [eos]
        weight = 1.0 if ex.score_prompt else reading_weight
        m = [float(ex.score_prompt)] * len(p) + [weight] * (len(a) + 1)
        if len(seq) > block:
            continue
        for j in open_bins:
            if len(bins[j][0]) + len(seq) <= block:
                bins[j][0].extend(seq)
                bins[j][1].extend(m)
                break
        else:
            bins.append((list(seq), list(m)))
            open_bins.append(len(bins) - 1)
        open_bins = [j for j in open_bins if block - len(bins[j][0]) >= 6][-32:]
    rows = [ids + [pad_id] * (block - len(ids)) for ids, _ in bins]
    masks = [m + [0.0] * (block - len(m)) for _, m in bins]
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks, dtype=torch.float32)


def lr_at(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio * lr``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, total - config.warmup))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_model(
    world: World,
    config: TrainConfig,
    out_dir: Path,
    probe: Callable[[Any, Any, int], dict[str, float]] | None = None,
    probe_every: int = 0,
    init_from: Path | None = None,
    resume_every: int = 0,
) -> dict[str, Any]:
    """Train one reference model on ``world`` and save it as a standard HF directory in ``out_dir``.

    With ``init_from`` training continues from that model directory (its tokenizer and weights: a later
    phase of a curriculum); otherwise a tokenizer is trained and the model initialised from ``config``.
    Returns training facts (steps, tokens, seconds, final loss) also written to ``training.json``, which
    lists every phase the model went through.

    With ``resume_every`` ``n > 0`` the weights, optimiser state and position are saved to ``out_dir/resume.pt``
    every ``n`` steps (and the tokenizer once, at the start), and a call that finds that file carries on from it:
    the examples of an epoch and their order depend only on the seeds, so the resumed run sees the batches the
    stopped one would have (a phase of a larger model can outlast a session).
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    if not config.slices:
        world = replace(world, slice_facts=())
    factory = ExampleFactory(world, seed=config.seed)
    state = _read_resume(out_dir / RESUME, config) if resume_every else None  # a stopped run of this phase
    earlier: list[dict[str, Any]] = []
    model: Any
    if init_from is not None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(init_from, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(init_from, local_files_only=True, dtype=torch.float32)
        previous = json.loads((init_from / "training.json").read_text(encoding="utf-8"))
        earlier = previous.get("phases", [previous])
    elif state is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(out_dir, local_files_only=True)  # the stopped run's own
        model = build_model(config, tokenizer)
    else:
        tok_texts = [e.prompt + e.answer for e in factory.epoch(0, config.reading_ratio, config.per_fact)]
        tokenizer = train_tokenizer(tok_texts, config.vocab_size)
        model = build_model(config, tokenizer)
        if resume_every:
            out_dir.mkdir(parents=True, exist_ok=True)
            tokenizer.save_pretrained(out_dir)
    model.to(torch.device(config.device))
    device = next(model.parameters()).device  # from here on everything follows the model
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("%s: %.2fM parameters, vocabulary %d", config.architecture, n_params / 1e6, len(tokenizer))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optim = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
    )

    def epoch_tensors(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        examples = factory.epoch(epoch, config.reading_ratio, config.per_fact, config.paraphrases)
        return pack(examples, tokenizer, config.block, tokenizer.pad_token_id, config.reading_weight)

    first = epoch_tensors(0)  # epochs differ slightly in size; the schedule is planned on the first
    total_steps = config.epochs * math.ceil(len(first[0]) / config.batch)
    at = _Position() if state is None else _restore(state, model, optim)
    step, tokens, started, loss_ema = at.step, at.tokens, time.time() - at.seconds, at.loss_ema
    history: list[dict[str, float]] = list(at.history)
    for epoch in range(at.epoch, config.epochs):
        ids, mask = first if epoch == 0 else epoch_tensors(epoch)
        order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(config.seed + epoch))
        model.train()
        for start in range(at.start if epoch == at.epoch else 0, len(ids), config.batch):
            idx = order[start : start + config.batch]
            x, m = ids[idx].to(device), mask[idx].to(device)  # (B, T)
            for group in optim.param_groups:
                group["lr"] = lr_at(step, total_steps, config)
            loss = train_step(model, optim, x, m)
            step += 1
            tokens += int(x.numel())
            if step % 20 == 0 or step <= 1:  # .item() waits for the device: not on every step
                loss_ema = 0.8 * loss_ema + 0.2 * loss.item() if step > 1 else loss.item()
            if step % 100 == 0:
                elapsed = time.time() - started
                logger.info(
                    "step %d/%d epoch %d loss %.3f tok/s %.0f", step, total_steps, epoch, loss_ema, tokens / elapsed
                )
            if probe is not None and probe_every and step % probe_every == 0:
                model.eval()
                row = {"step": step, "seconds": time.time() - started, **probe(model, tokenizer, step)}
                history.append(row)
                logger.info("probe %s", row)
                model.train()
            if resume_every and step % resume_every == 0:
                where = _Position(epoch, start + config.batch, step, tokens, time.time() - started, loss_ema, history)
                _save_resume(out_dir / RESUME, config, model, optim, where)
    model.eval()
    model.to(torch.device("cpu"))  # saved and handed back on the CPU, whatever it trained on
    phase = {
        "config": asdict(config),
        "parameters": n_params,
        "steps": step,
        "tokens": tokens,
        "seconds": round(time.time() - started, 1),
        "final_loss": round(loss_ema, 4),
        "probes": history,
    }
    # Which slices the model has seen: `world check` scores only these (a model trained before a slice existed
    # has no tokens for it; its Chinese prompts even overrun GPT-2's learned positions).
    slices = sorted({f.slice for f in world.slice_facts})
    info = {**phase, "phases": [*earlier, phase], "slices": slices}
    save_model(model, tokenizer, out_dir, info)
    (out_dir / RESUME).unlink(missing_ok=True)  # the phase is complete
    return info


RESUME = "resume.pt"  # a phase's state while it trains (``train_model``'s ``resume_every``)


@dataclass(frozen=True)
class _Position:
    """Where a phase stands: the next batch (``epoch``, ``start`` index into its order) and the running figures."""

    epoch: int = 0
    start: int = 0
    step: int = 0
    tokens: int = 0
    seconds: float = 0.0
    loss_ema: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


def portable(config: TrainConfig) -> dict[str, Any]:
    """The settings that decide a phase's result (threads and device do not)."""
    return {**asdict(config), "threads": 0, "device": ""}


def _save_resume(path: Path, config: TrainConfig, model: Any, optim: torch.optim.Optimizer, at: _Position) -> None:
    """Write the phase's state atomically: a stop while writing leaves the previous state."""
    state = {"config": portable(config), "model": model.state_dict(), "optim": optim.state_dict(), **asdict(at)}
    partial = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)  # a later phase writes its model only at the end
    torch.save(state, partial)
    partial.replace(path)


def _read_resume(path: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The saved state of a stopped run of this phase; ``None`` when there is none or it was saved for other
    settings (then the phase starts over, tokenizer included)."""
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("config") != portable(config):
        logger.info("%s was saved for other settings: the phase starts over", path)
        return None
    return state


def _restore(state: dict[str, Any], model: Any, optim: torch.optim.Optimizer) -> _Position:
    """Put the saved weights and optimiser state back; where to go on."""
    model.load_state_dict(state["model"])
    optim.load_state_dict(state["optim"])  # moved to the parameters' device by torch
    at = _Position(**{f.name: state[f.name] for f in fields(_Position)})
    logger.info("resuming at step %d (epoch %d)", at.step, at.epoch)
    return at


def train_step(model: Any, optim: torch.optim.Optimizer, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """One optimiser step on packed blocks ``x`` (B, T), scoring only the next tokens ``m`` marks; the loss."""
    logits = model(input_ids=x).logits[:, :-1]  # (B, T-1, V)
    losses = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="none"
    )
    loss = (losses * m[:, 1:].reshape(-1)).sum() / m[:, 1:].sum().clamp(min=1)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    return loss


def trained_slices(model_dir: Path) -> tuple[str, ...]:
    """The world slices the reference model in ``model_dir`` was trained on (none for one built before them)."""
    path = model_dir / "training.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return tuple(info.get("slices", ()))


def save_model(model: Any, tokenizer: Any, out_dir: Path, info: dict[str, Any]) -> None:
    """Save weights (safetensors), tokenizer files, prompt format and ``training.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    WORLD_FORMAT.save(out_dir)
    (out_dir / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
