x: {
  a = ''
    first
      indented ${x}
    last
  '';
  b = ''  no newline '';
  c = ''
        ''${not} '''quoted''' ''\n ''\t ''\x $ $$ ${"$"}{y} '$ '
  '';
  d = ''

      blank lines above

    '';
  e = ''${x}  ${x}
     tail'';
  f = '''';
  g = ''
  ${x}
    ${x}
  '';
}
