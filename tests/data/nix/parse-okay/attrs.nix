rec {
  a.b.c = 1;
  a.b.d = 2;
  a.e = { f = 3; };
  "quoted name" = 4;
  ${"dyn"} = 5;
  "${"x" + "y"}" = 6;
  or = 7;
  x = { inherit (a.b) c d; inherit or; };
  nested = { y.z = 1; } // { y = { w = 2; }; };
}
