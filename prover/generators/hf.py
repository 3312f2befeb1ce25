"""transformers backend: `AutoModelForCausalLM` from a hub id or a local path.

Sampling (n samples, temperature, top-p) or beam search (`--beam`, or temperature 0);
each suggestion's log-probability is the sum of its tokens' log-probabilities under the
model, taken from the generation scores. Device and dtype are picked automatically
unless given. Generation runs in a worker thread so proof-assistant I/O goes on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from envs.tactic_guard import TacticPolicy
from envs.types import Suggestion
from prover.generators.base import GeneratorSetupError, NamedModelGenerator
from prover.generators.prompts import Prompt
from prover.options import GeneratorOptions

log = logging.getLogger(__name__)


def _dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """transformers renamed `torch_dtype` to `dtype` in 4.56."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


class HFGenerator(NamedModelGenerator):
    def __init__(
        self,
        model: str,
        prompt: Prompt,
        language: str,
        options: GeneratorOptions,
        policy: TacticPolicy = TacticPolicy(),
    ) -> None:
        super().__init__(model, prompt, language, options, policy)
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: str = "cpu"

    def load(self) -> None:
        """Load model and tokenizer once; errors say what is wrong."""
        with self._lock:
            if self._model is not None:
                return
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as exc:
                raise GeneratorSetupError(
                    f"--generator hf needs torch and transformers: pip install 'prover[hf]' ({exc})"
                ) from exc
            device = self.options.device or (
                "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
            )
            dtype_name = self.options.dtype or ("bfloat16" if device == "cuda" else "float32")
            dtype = getattr(torch, dtype_name, None)
            if not isinstance(dtype, torch.dtype):
                raise GeneratorSetupError(f"unknown --dtype {dtype_name!r}")
            # a model larger than one GPU (Llemma 34B in bf16) is split over all of them by accelerate
            sharded = device == "cuda" and not self.options.device and torch.cuda.device_count() > 1
            extra = {"device_map": "auto"} if sharded else {}
            try:
                tokenizer = AutoTokenizer.from_pretrained(self.model_name)
                model = AutoModelForCausalLM.from_pretrained(self.model_name, **_dtype_kwarg(dtype), **extra)
            except (OSError, ValueError, ImportError) as exc:
                raise GeneratorSetupError(f"cannot load model {self.model_name!r}: {exc}") from exc
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "left"
            tokenizer.truncation_side = "left"
            if not sharded:
                model.to(device)  # type: ignore[arg-type]
            model.eval()
            torch.manual_seed(self.seed)
            self._torch, self._model, self._tokenizer, self._device = torch, model, tokenizer, device
            log.info("loaded %s on %s (%s)", self.model_name, device, dtype_name)

    def reseed(self, seed: int) -> None:
        super().reseed(seed)
        if self._model is not None:
            self._torch.manual_seed(seed)

    async def _complete(self, prompts: list[str], n: int) -> list[list[Suggestion]]:
        return await asyncio.to_thread(self.complete_sync, prompts, n)

    def complete_sync(self, prompts: list[str], n: int) -> list[list[Suggestion]]:
        self.load()
        torch, model, tok = self._torch, self._model, self._tokenizer
        context = getattr(model.config, "max_position_embeddings", 4096)
        limit = max(16, context - self.options.max_new_tokens)
        enc = tok(prompts, return_tensors="pt", padding=True, truncation=True, max_length=limit).to(model.device)
        beam = self.options.beam or self.options.temperature <= 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.options.max_new_tokens,
            "num_return_sequences": n,
            "return_dict_in_generate": True,
            "output_scores": True,
            "output_logits": not beam,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.eos_token_id,
            "stop_strings": list(self.prompt.stop),
            "tokenizer": tok,
        }
        if beam:
            kwargs.update(do_sample=False, num_beams=n, early_stopping=True)
        else:
            kwargs.update(do_sample=True, temperature=self.options.temperature, top_p=self.options.top_p)
        with torch.no_grad():
            out = model.generate(**enc, **kwargs)
        if beam and n > 1:
            scores = model.compute_transition_scores(
                out.sequences, out.scores, out.beam_indices, normalize_logits=False
            )
        else:
            scores = model.compute_transition_scores(
                out.sequences, out.logits if not beam else out.scores, normalize_logits=True
            )
        start = enc["input_ids"].shape[1]
        generated = out.sequences[:, start:]
        results: list[list[Suggestion]] = [[] for _ in prompts]
        for i in range(generated.shape[0]):
            tokens = generated[i].tolist()
            length = len(tokens)
            for j, t in enumerate(tokens):
                if t == tok.eos_token_id or t == tok.pad_token_id:
                    length = j + 1 if t == tok.eos_token_id else j
                    break
            row = scores[i, :length]
            logprob = float(row[torch.isfinite(row)].sum()) if length else 0.0
            text = tok.decode(tokens[:length], skip_special_tokens=True)
            results[i // n].append(Suggestion(text, logprob, max(length, 1)))
        return results
