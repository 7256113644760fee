[
  (x: x)
  ({ a, b ? 2, ... }: a + b)
  ({ a, b, }: a)
  ({ ... }@args: args)
  (args@{ a ? args, ... }: a)
  ({}: 1)
  ({ }@x: x)
  (x: y: z: x y z)
  ({ a ? b, b ? 1 }: a)
]
