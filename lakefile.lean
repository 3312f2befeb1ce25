import Lake
open Lake DSL

/-!
The Lean workspace the prover's Lean backends run in.

Mathlib and the Lean REPL are pinned to the tags of one Lean release, the same one
as `lean-toolchain`; bump all three together. `prover setup lean` fetches Mathlib's
build cache and builds the REPL; `lake exe repl` then starts it.
-/

package «prover-workspace»

require mathlib from git
  "https://github.com/leanprover-community/mathlib4" @ "v4.32.0"

require REPL from git
  "https://github.com/leanprover-community/repl" @ "v4.32.0"
