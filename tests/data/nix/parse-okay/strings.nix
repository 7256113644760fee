x: [
  "plain" "with \"quotes\" and \\ and \n\r\t\q"
  "dollar $ $$ $${x} \${x} $\{x}"
  "interp ${x} and ${toString 1}${x}"
  "multi
line"
  "ends with $"
  "${x}"
  ""
]
