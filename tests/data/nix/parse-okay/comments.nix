# leading comment
/* block
   comment */ { /* inline */ a = 1; # trailing
  b = /**/ 2; /* ** stars ** */ c = 3;
  d = "# not a comment"; e = "/* nor this */";
}
# final
