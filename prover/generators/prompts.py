"""Prompt templates: files under `prover/prompts/`, selected by name or given as a path.

A template holds `{state}` once; the text after it is what the model continues.
Each template has stop sequences that end one tactic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"
STOPS = {"llemma": ("---",), "llmstep": ("[GOAL]", "\n")}


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    template: str
    stop: tuple[str, ...]

    def render(self, state: str) -> str:
        return self.template.replace("{state}", state.strip())


def load_prompt(name: str, language: str) -> Prompt:
    """`name` is `llemma`, `llmstep` or a path to a template file containing `{state}`."""
    if name in STOPS:
        path = PROMPT_DIR / f"{name}_{language}.txt"
        if not path.exists():
            available = sorted(p.stem for p in PROMPT_DIR.glob(f"*_{language}.txt"))
            raise ValueError(f"no {name!r} prompt for {language}; available: {', '.join(available) or 'none'}")
        return Prompt(name, path.read_text(), STOPS[name])
    path = Path(name)
    if not path.is_file():
        raise ValueError(f"prompt {name!r} is neither llemma, llmstep nor a readable file")
    template = path.read_text()
    if "{state}" not in template:
        raise ValueError(f"prompt file {path} has no {{state}} placeholder")
    return Prompt(path.stem, template, STOPS["llemma"])
