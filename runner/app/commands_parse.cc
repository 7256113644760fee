// `switchyard parse FILE [--json]`: parse one Nix file with our parser (DESIGN.md §3).
// Exit 0 when Nix would accept it (printing the AST as JSON with --json), exit 2 with one
// "FILE:LINE:COL: message" line when it would not. `--nix` prints the AST the way
// `nix-instantiate --parse` does, which is how the parser is compared with Nix's.
#include <filesystem>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "runner/app/commands.h"
#include "runner/core/error.h"
#include "runner/nix/ast_json.h"
#include "runner/nix/parser.h"
#include "runner/nix/printer.h"
#include "runner/os/files.h"

namespace runner::app {

void registerParseCommands(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("parse", "Parse one Nix file (exit 2 with file:line:col)");
  auto file = std::make_shared<std::string>();
  auto asJson = std::make_shared<bool>(false);
  auto asNix = std::make_shared<bool>(false);
  auto sorted = std::make_shared<bool>(false);
  cmd->add_option("FILE", *file, "the .nix file")->required();
  cmd->add_flag("--json", *asJson, "print the AST as JSON");
  cmd->add_flag("--nix", *asNix, "print the AST like `nix-instantiate --parse`");
  cmd->add_flag("--nix-sorted", *sorted,
                "with --nix: formals and let bindings by name (ignores Nix's symbol order)");
  cmd->callback([&ctx, file, asJson, asNix, sorted] {
    ctx.action = [=] {
      std::filesystem::path path(*file);
      if (!std::filesystem::is_regular_file(path))
        throw InputError(*file + ": not a readable file");
      std::string source = os::readFile(path);
      auto ast = nix::parseNix(source, *file);
      if (*asJson) std::cout << nix::dumpJson(*ast, 2) << "\n";
      if (*asNix) {
        nix::NixPrintOptions o;
        o.basePath = std::filesystem::absolute(path).parent_path().string();
        const char* home = std::getenv("HOME");
        o.home = home ? home : "";
        o.sortByName = *sorted;
        std::cout << nix::printNixParse(*ast, o) << "\n";
      }
      return 0;
    };
  });
}

}  // namespace runner::app
