"""A tiny randomly initialised Llama and a BPE tokenizer trained on the spot: the real
transformers code path of `--generator hf`, on a CPU, with no download.

    python -m prover.tiny_model OUTDIR
    prover prove --env coq --file tests/data/coq_examples.v --theorem add_zero_r \
        --generator hf --model OUTDIR --samples 4 --expansions 5 --max-new-tokens 16

The weights are random, so its tactics are noise: it shows the model path working (loading,
batched generation, log-probabilities, the search asking it), not proving. The tests build the
same model with `build_tiny_llama`. Needs `.[hf]` (torch, transformers, tokenizers).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from prover.paths import nonempty_path

# what the tokenizer learns its merges from: prompt scaffolding and tactics of all three languages
TRAINING_TEXT = [
    "Tactic state:\n---\nn : nat\n============================\nn + 0 = n\n---\nNext tactic:\n---\nlia.\n---\n",
    "theorem t (a b : ℕ) (h : a = b) : b = a := by\n  omega\n  simp\n  linarith\n  ring\n",
    "intros n. induction n; simpl; auto. reflexivity. split. assumption. exact h. apply And.intro.",
    "⊢ ∀ x : ℝ, x ^ 2 ≥ 0 := by nlinarith [sq_nonneg x] norm_num at h ⊢ positivity",
]


def build_tiny_llama(directory: Path, seed: int = 0) -> Path:
    """Write a 2-layer, 32-wide Llama and its tokenizer (about 100 kB) to `directory`; deterministic in `seed`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(TRAINING_TEXT * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    fast.save_pretrained(directory)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prover.tiny_model",
        description="Build a tiny random Llama + tokenizer (offline, CPU, seconds) for `--generator hf --model DIR`.",
    )
    parser.add_argument("outdir", type=nonempty_path, help="directory to write the model and tokenizer into")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        path = build_tiny_llama(args.outdir, args.seed)
    except ImportError as exc:
        print(
            f"prover.tiny_model: error: needs torch, transformers, tokenizers: pip install -e '.[hf]' ({exc})",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        print(f"prover.tiny_model: error: cannot write {args.outdir}: {exc}", file=sys.stderr)
        return 2
    print(f"tiny model written to {path} in {time.monotonic() - started:.1f}s; try:")
    print(
        "  prover prove --env coq --file tests/data/coq_examples.v --theorem add_zero_r "
        f"--generator hf --model {path} --samples 4 --expansions 5 --max-new-tokens 16"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
