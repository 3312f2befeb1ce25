"""A tiny random Llama and a BPE tokenizer trained here: the real transformers path, no download."""

from __future__ import annotations

from pathlib import Path

TRAINING_TEXT = [
    "Tactic state:\n---\nn : nat\n============================\nn + 0 = n\n---\nNext tactic:\n---\nlia.\n---\n",
    "theorem t (a b : ℕ) (h : a = b) : b = a := by\n  omega\n  simp\n  linarith\n  ring\n",
    "intros n. induction n; simpl; auto. reflexivity. split. assumption. exact h. apply And.intro.",
    "⊢ ∀ x : ℝ, x ^ 2 ≥ 0 := by nlinarith [sq_nonneg x] norm_num at h ⊢ positivity",
]


def build_tiny_llama(directory: Path, seed: int = 0) -> Path:
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
