intros a b ha hb.
assert (h1 : a * b = 6) by admit.
rewrite h1.
admit.
