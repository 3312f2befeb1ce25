Axiom myax : False.
Theorem before : 1 = 1. Proof. reflexivity. Qed.
Module M. Theorem inner : True. Proof. exact I. Qed.
Section S.
  Variable n : nat.
  Lemma sec : n = n. Proof. reflexivity. Qed.
End S.
Module N.
  Theorem deep : 2 = 2. Proof. reflexivity. Qed.
End N.
Theorem broken : 1 = 2.
Proof. reflexivity. Qed.
End M.
Module Type T. Parameter x : nat. End T.
Module F (X : T). Theorem f : X.x = X.x. Proof. reflexivity. Qed. End F.
Theorem a : 1 = 2. Proof. destruct myax. Qed.
Module X. Theorem a : 1 = 1. Proof. reflexivity. Qed. End X.
Import X.
Theorem after : True. Proof. exact I. Qed.
Print Assumptions a.
