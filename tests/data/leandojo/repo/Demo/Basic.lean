import Lean

namespace Demo

/-- Symmetry of equality, in two steps. -/
theorem eq_symm' (a b : Nat) (h : a = b) : b = a := by
  subst h
  rfl

theorem add_zero' (n : Nat) (k : Nat := 0) : n + k = n + k := by
  rfl

theorem and_swap (p q : Prop) (hp : p) (hq : q) : q ∧ p := by
  constructor
  · exact hq
  · exact hp

end Demo
