// Commands that help install Switchyard (issue 15):
//  * `switchyard github-app-manifest --url URL [--name N] [--forge NAME]` prints the GitHub
//    App manifest (templates/github-app-manifest.json, embedded) for this runner, so creating
//    the App is one form. Its permissions are exactly what Switchyard calls:
//      checks: write         POST/PATCH /repos/{o}/{r}/check-runs; check_run/check_suite
//                            re-run events
//      statuses: write       POST /repos/{o}/{r}/statuses/{sha}
//      pull_requests: write  GET /repos/{o}/{r}/pulls/{n}; the plan comment on pull requests
//      issues: write         the comment API (/issues/{n}/comments, comment reactions) and the
//                            issue_comment event that carries `/switchyard rerun|approve`
//      metadata: read        GET /repos/{o}/{r}/collaborators/{user}/permission, /installation
//    and events push, pull_request, issue_comment, check_run, check_suite (installation and
//    ping come to every App unasked).
//  * `switchyard manpage` prints switchyard(1) in roff, made from the CLI's own help, which the
//    build installs (packaging/packaging.cmake).
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/commands.h"
#include "runner/core/error.h"

namespace runner::app {

const std::string& githubAppManifestTemplate();  // generated from templates/ (CMake)

namespace {

// roff: backslashes, and a line that would start with a control character.
std::string roffEscape(const std::string& text) {
  std::string out;
  bool lineStart = true;
  for (char c : text) {
    if (lineStart && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else
      out += c;
    lineStart = c == '\n';
  }
  return out;
}

std::string manPage(CLI::App& app) {
  std::string out =
      ".TH SWITCHYARD 1 \"\" \"switchyard 0.1.0\" \"User Commands\"\n"
      ".SH NAME\n"
      "switchyard \\- " +
      roffEscape(app.get_description().substr(app.get_description().find(": ") + 2)) +
      "\n"
      ".SH SYNOPSIS\n"
      ".B switchyard\n"
      "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n"
      ".SH DESCRIPTION\n"
      "Switchyard works out which machines of a NixOS flake repository a change affects, builds "
      "exactly those and deploys them over SSH, and reports a status per machine to the forge. "
      "Configuration: \\fB/etc/switchyard/switchyard.yaml\\fR (see \\fBswitchyard "
      "check-config\\fR).\n"
      ".SH COMMANDS\n";
  for (CLI::App* sub : app.get_subcommands([](CLI::App* s) { return !s->get_group().empty(); })) {
    out += ".SS " + roffEscape(sub->get_name()) + "\n";
    out += roffEscape(sub->get_description()) + "\n";
    std::string help = sub->help("switchyard");
    out += ".PP\n.nf\n" + roffEscape(help) + (help.ends_with("\n") ? "" : "\n") + ".fi\n";
  }
  out +=
      ".SH EXIT STATUS\n"
      "0 success; 1 the operation failed (a build, a deploy, a plan that cannot be made) or, for "
      "check-config, the configuration names files missing on this machine; 2 bad usage or bad "
      "input (one line on standard error naming the file or flag).\n"
      ".SH FILES\n"
      ".TP\n/etc/switchyard/switchyard.yaml\nthe configuration\n"
      ".TP\n/var/lib/switchyard\nstate: the database, git mirrors, logs, GC roots\n"
      ".TP\n/usr/share/switchyard/hooks\nthe git hooks post-receive and pre-push\n";
  return out;
}

}  // namespace

void registerInstallCommands(CLI::App& app, CommandContext& ctx) {
  auto* manifest = app.add_subcommand(
      "github-app-manifest",
      "Print the GitHub App manifest for this runner (create the App in one form)");
  struct Opts {
    std::string url, name = "Switchyard", forge = "github";
  };
  auto o = std::make_shared<Opts>();
  manifest->add_option("--url", o->url, "the runner's public URL (public_url)")->required();
  manifest->add_option("--name", o->name, "the App's name (unique on GitHub)")
      ->capture_default_str();
  manifest->add_option("--forge", o->forge, "the forge's name under forges: (webhook path)")
      ->capture_default_str();
  manifest->callback([&ctx, o] {
    ctx.action = [o] {
      std::string url = o->url;
      while (url.ends_with("/")) url.pop_back();
      if (!url.starts_with("https://") && !url.starts_with("http://"))
        throw InputError("--url: must start with https:// (or http://), not '" + o->url + "'");
      if (url.find_first_of(" \t\r\n?#", 0) != std::string::npos)
        throw InputError("--url: must be a base URL without spaces, query or fragment");
      if (o->forge.empty() || o->forge.find_first_not_of(
                                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                  "-_.") != std::string::npos)
        throw InputError("--forge: a forge name is letters, digits, '-', '_' and '.'");
      auto m = nlohmann::ordered_json::parse(githubAppManifestTemplate());
      m["name"] = o->name;
      m["url"] = url;
      m["hook_attributes"]["url"] = url + "/hooks/" + o->forge;
      m["redirect_url"] = url + "/";
      std::cout << m.dump(2) << "\n";
      return 0;
    };
  });

  auto* man = app.add_subcommand("manpage", "Print the switchyard(1) manual page (roff)");
  man->group("");  // not listed in --help: it is for packaging
  man->callback([&ctx, &app] {
    ctx.action = [&app] {
      std::cout << manPage(app);
      return 0;
    };
  });
}

}  // namespace runner::app
