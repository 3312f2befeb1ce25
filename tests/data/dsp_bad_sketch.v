intros a b ha hb.
assert (h1 : a * b = 7) by admit.
admit.
