# Writes a C++ file holding templates/*.mustache as string literals, so the switchyard binary
# renders PR comments and check-run output without finding a templates/ directory at run
# time. Run as: cmake -DOUT=<file.cc> -DDIR=<templates dir> -DFILES=a.md.mustache,b.md.mustache -P this
set(delim "SY_TEMPLATE")
set(text "// Generated from templates/ by runner/report/embed_templates.cmake. Do not edit.\n")
string(APPEND text "#include \"runner/report/templates.h\"\n\n")
string(APPEND text "namespace runner::report::detail {\n\n")
string(APPEND text "const std::vector<std::pair<std::string_view, std::string_view>>& embeddedTemplates() {\n")
string(APPEND text "  static const std::vector<std::pair<std::string_view, std::string_view>> kTemplates = {\n")
string(REPLACE "," ";" FILES "${FILES}")
foreach(f ${FILES})
  file(READ "${DIR}/${f}" content)
  string(FIND "${content}" ")${delim}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${f} contains the raw string delimiter ${delim}")
  endif()
  # "pr_comment.md.mustache" -> "pr_comment"
  string(REGEX REPLACE "\\..*$" "" name "${f}")
  string(APPEND text "      {\"${name}\", R\"${delim}(${content})${delim}\"},\n")
endforeach()
string(APPEND text "  };\n  return kTemplates;\n}\n\n}  // namespace runner::report::detail\n")
file(WRITE "${OUT}.tmp" "${text}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
