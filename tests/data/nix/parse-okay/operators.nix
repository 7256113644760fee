a: b: [
  (a + b * 2 - 3 / 4)
  (a ++ b ++ [ 1 ])
  (a // b // { c = 1; })
  (a == b && b != a || !a -> b -> a)
  (a < b) (a <= b) (a > b) (a >= b)
  (-a) (- a - -b) (!a == b)
  (a ? b) (a ? "b") (a ? ${"b"}) (a ? b.c.d)
  (a.b or a.c or 3)
  (a.b.c) (a."b c") (a.${b}) (a.${"lit"})
  (a b (a b) a.b)
  (1 / 2) (1/2) (a/b) (a /b)
]
