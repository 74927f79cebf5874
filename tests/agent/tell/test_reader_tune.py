"""Fine-tuning the reader's encoder: save / load of the changed layers, a tiny run, resuming (no downloads:
a tiny random BERT with the shipped MiniLM's tokenizer files)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agent.tell import ReaderModel, TokenEncoder, TripleReader, TuneSettings, fine_tune_reader
from agent.tell._reader_model import ARRAYS, ENCODER_PREFIX
from agent.tell._reader_train import _export, _heads
from memory import default_model_dir
from tools.errors import ConfigError, InvalidInputError

RELATIONS = ("company_ceo", "company_hq")
NAMES = {
    "company_ceo": [("Acme", "Jane Roe"), ("Globex", "Hank Scorpio"), ("Initech", "Bill Lumbergh"), ("Umbrella", "Al")],
    "company_hq": [
        ("Acme", "Springfield"),
        ("Globex", "Cypress Creek"),
        ("Initech", "Austin"),
        ("Umbrella", "Raccoon"),
    ],
}
HIDDEN = 16


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer random BERT (hidden 16) with the shipped encoder's tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32
    )
    BertModel(config).save_pretrained(directory)
    src = default_model_dir()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, directory / name)
    return directory


def _base() -> ReaderModel:
    """Random heads for the tiny encoder, with the training settings fine-tuning reads from ``meta``."""
    import torch

    torch.manual_seed(1)
    heads = _heads(HIDDEN + 1, 5 * HIDDEN + 1, len(RELATIONS) + 1, proj=4, lstm=3, hidden=5)
    meta = {"seed": 0, "per_relation": 16, "max_wrong": 0.01}
    return ReaderModel(relations=RELATIONS, threshold=0.5, meta=meta, acceptance=None, encoder={}, **_export(heads))


SMALL = TuneSettings(layers=1, epochs=2, lr=1e-3, head_lr=1e-3, batch=8)


def _tune(tiny_dir: Path, checkpoint: Path | None = None, settings: TuneSettings = SMALL) -> ReaderModel:
    model, _ = fine_tune_reader(_base(), NAMES, TokenEncoder(tiny_dir), settings=settings, checkpoint=checkpoint)
    return model


def test_a_tiny_run_changes_only_the_top_layers_and_reads_with_them(tiny_dir: Path, tmp_path: Path) -> None:
    model = _tune(tiny_dir)
    assert model.encoder and all(k.startswith("encoder.layer.1.") for k in model.encoder)
    assert all(v.dtype == np.float16 for v in model.encoder.values())
    assert model.meta["fine_tune"]["layers"] == 1 and 0.0 < model.threshold <= 1.01
    base = _base()
    assert not np.array_equal(model.wr, base.wr)  # the heads trained on from the base's
    shipped = TokenEncoder(tiny_dir)
    own = shipped.modules()[1].state_dict()
    assert any(not np.allclose(own[k].numpy(), v.astype(np.float32)) for k, v in model.encoder.items())
    # the reader reads with the tuned encoder; the encoder passed in is left as it was
    reader = TripleReader(model, shipped)
    assert reader.encoder is not shipped and reader.encoder.weights.keys() == model.encoder.keys()
    tuned_states = reader.encoder.encode(["Acme is run by Jane Roe."])[0].states
    frozen_states = shipped.encode(["Acme is run by Jane Roe."])[0].states
    assert not np.allclose(tuned_states, frozen_states)
    assert all(np.array_equal(own[k], v) for k, v in shipped.modules()[1].state_dict().items())
    assert TripleReader(base, shipped).encoder is shipped  # a frozen-encoder reader reads with the shipped one


def test_the_fine_tuned_reader_saves_and_loads_its_encoder_layers(tiny_dir: Path, tmp_path: Path) -> None:
    model = _tune(tiny_dir, settings=TuneSettings(layers=2, epochs=1, lr=1e-3, head_lr=1e-3, batch=8))
    path = tmp_path / "reader.npz"
    model.save(path)
    with np.load(path) as data:
        assert sorted(k for k in data.files if k.startswith(ENCODER_PREFIX)) == sorted(
            ENCODER_PREFIX + k for k in model.encoder
        )
    loaded = ReaderModel.load(path)
    assert loaded.encoder.keys() == model.encoder.keys()
    assert all(np.array_equal(loaded.encoder[k], model.encoder[k]) for k in model.encoder)
    assert all(np.array_equal(getattr(loaded, k), getattr(model, k)) for k in ARRAYS)
    assert loaded.threshold == model.threshold and loaded.meta["fine_tune"] == model.meta["fine_tune"]
    sentence = "These days Globex is run by Hank Scorpio."
    a = TripleReader(model, TokenEncoder(tiny_dir)).read(sentence)
    b = TripleReader(loaded, TokenEncoder(tiny_dir)).read(sentence)
    assert (a is None and b is None) or (a is not None and b is not None and a.confidence == b.confidence)


def test_a_tuned_reader_is_tuned_further_from_its_own_layers_with_from_base_encoder(tiny_dir: Path) -> None:
    first = _tune(tiny_dir)
    still = TuneSettings(layers=1, epochs=1, lr=1e-9, head_lr=1e-9, batch=8)  # (almost) no step: where it starts
    again = fine_tune_reader(first, NAMES, TokenEncoder(tiny_dir), settings=replace(still, from_base_encoder=True))[0]
    afresh = fine_tune_reader(first, NAMES, TokenEncoder(tiny_dir), settings=still)[0]
    assert again.encoder.keys() == first.encoder.keys() == afresh.encoder.keys()
    assert all(np.allclose(again.encoder[k], first.encoder[k], atol=1e-3) for k in first.encoder)
    assert not all(np.allclose(afresh.encoder[k], first.encoder[k], atol=1e-3) for k in first.encoder)


class _StopError(Exception):
    pass


def test_a_resumed_fine_tune_gives_what_an_uninterrupted_one_gives(tiny_dir: Path, tmp_path: Path) -> None:
    whole = _tune(tiny_dir)

    def stop_in_epoch_two(stage: str, done: int, total: int) -> None:
        if stage.startswith("fine-tuning epoch 2/"):
            raise _StopError

    with pytest.raises(_StopError):  # "interrupted" in its second epoch: the checkpoint holds the first
        fine_tune_reader(_base(), NAMES, TokenEncoder(tiny_dir), settings=SMALL, checkpoint=tmp_path,
                         progress=stop_in_epoch_two)  # fmt: skip
    assert (tmp_path / "tune.pt").exists() and not (tmp_path / "tune.pt.tmp").exists()
    stages: set[str] = set()
    resumed, _ = fine_tune_reader(
        _base(), NAMES, TokenEncoder(tiny_dir), settings=SMALL, checkpoint=tmp_path,
        progress=lambda stage, done, total: stages.add(stage),
    )  # fmt: skip
    assert "fine-tuning epoch 2/2" in stages and "fine-tuning epoch 1/2" not in stages
    for key in ARRAYS:
        assert np.array_equal(getattr(whole, key), getattr(resumed, key)), key
    assert all(np.array_equal(whole.encoder[k], resumed.encoder[k]) for k in whole.encoder)
    with pytest.raises(ConfigError, match="other settings"):  # a checkpoint of other settings is never mixed in
        _tune(tiny_dir, tmp_path, TuneSettings(layers=1, epochs=3, lr=1e-3, head_lr=1e-3, batch=8))


def test_bad_settings_and_foreign_weights_are_typed_errors(tiny_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot fine-tune 3"):
        _tune(tiny_dir, settings=TuneSettings(layers=3, epochs=1))
    with pytest.raises(InvalidInputError):
        TuneSettings(lr=0.0).check()
    with pytest.raises(ConfigError, match="lacks its training settings"):
        fine_tune_reader(ReaderModel(**{**_base().__dict__, "meta": {}}), NAMES, TokenEncoder(tiny_dir))
    bad = TokenEncoder(tiny_dir, weights={"encoder.layer.9.output.dense.weight": np.zeros((2, 2), np.float16)})
    with pytest.raises(ConfigError, match="do not fit"):
        bad.encode(["Acme is run by Jane Roe."])
