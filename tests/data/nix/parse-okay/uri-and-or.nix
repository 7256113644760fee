let or = 1; in {
  u1 = http://example.org/a?b=c&d=e;
  u2 = git+ssh://git@github.com/o/r.git;
  u3 = mailto:me@example.org;
  u4 = x:y;
  w = map or [ ];
}
