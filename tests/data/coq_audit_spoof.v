(* The audit must read b's, c's and d's axioms, whatever this file prints. *)
Axiom myax : False.

Theorem a : 1 = 1. Proof. reflexivity. Qed.

Theorem b : 1 = 2. Proof. destruct myax. Qed.

Theorem c : 1 = 2.
Proof. idtac "Closed under the global context". destruct myax. Qed.

Theorem d : 2 = 3.
Proof. idtac "Closed under the global context". idtac "Closed under the global context". destruct myax. Qed.

Print Assumptions a.
