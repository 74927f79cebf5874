"""The contract every LanguageModel backend passes (reused by each backend's test module)."""

from __future__ import annotations

from tools.lm import Generation, LanguageModel, PromptFormat


class LanguageModelContract:
    """Subclass and provide a ``lm`` fixture returning a ready backend."""

    def test_is_a_language_model(self, lm: LanguageModel) -> None:
        assert isinstance(lm, LanguageModel)
        assert isinstance(lm.name, str) and lm.name
        assert isinstance(lm.prompt_format, PromptFormat)

    def test_generate_one_per_prompt_in_order(self, lm: LanguageModel) -> None:
        prompts = [lm.prompt_format.question("Where is Paris?"), "The capital of France is", "Q: x\nA:"]
        gens = lm.generate(prompts, max_new_tokens=8)
        assert len(gens) == len(prompts)
        for gen in gens:
            assert isinstance(gen, Generation)
            assert "\n" not in gen.text
            assert gen.text == gen.text.strip()
            if gen.first_token_prob is not None:
                assert 0.0 <= gen.first_token_prob <= 1.0
                assert gen.margin is not None and 0.0 <= gen.margin <= gen.first_token_prob

    def test_generate_is_deterministic(self, lm: LanguageModel) -> None:
        prompts = ["The capital of France is", "Q: Where is Paris?\nA:"]
        assert lm.generate(prompts, max_new_tokens=6) == lm.generate(prompts, max_new_tokens=6)

    def test_generate_empty_batch(self, lm: LanguageModel) -> None:
        assert lm.generate([], max_new_tokens=4) == []
