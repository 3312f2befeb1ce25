Require Import Arith Lia Classical.

Theorem good : forall n : nat, n + 0 = n.
Proof. intros; lia. Qed.

Lemma bad: forall n : nat, n * 2 = n.
Proof.
  intros n.
  lia.
Qed.

Theorem after_bad : 2 + 2 = 4.
Proof. reflexivity. Qed.

Theorem uses_bad : 0 * 2 = 0.
Proof. apply bad. Qed.

Example ex: 3 = 3.
Proof. reflexivity. Qed.

Lemma admitted : 1 = 2.
Admitted.

Theorem em : forall P : Prop, P \/ ~ P.
Proof. exact classic. Qed.
