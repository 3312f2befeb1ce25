(* Example theorems for end-to-end tests of the Coq backend. *)
Require Import Arith Lia List.
Import ListNotations.

(* one tactic *)
Theorem add_zero_r : forall n : nat, n + 0 = n.
Proof. Admitted.

Theorem and_swap : forall P Q : Prop, P /\ Q -> Q /\ P.
Proof. Admitted.

Theorem lt_succ_ex : forall a b : nat, a < b -> a + 1 <= b.
Proof. Admitted.

(* several steps *)
Theorem app_nil_r_ex : forall (A : Type) (l : list A), l ++ [] = l.
Proof. Admitted.

Theorem double_ex : forall n : nat, n + n = 2 * n.
Proof. Admitted.

Theorem rev_length_ex : forall (A : Type) (l : list A), length (rev l) = length l.
Proof. Admitted.

(* false: must never be proved *)
Theorem false_add : forall n : nat, n + 1 = n.
Proof. Admitted.

Theorem false_prop : forall P : Prop, P.
Proof. Admitted.

(* for Draft, Sketch, Prove *)
Theorem dsp_sum : forall a b : nat, a = 2 -> b = 3 -> a * b + a = 8.
Proof. Admitted.
