#include "runner/deploy/ssh_options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner::deploy {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

constexpr const char* kLoosens = "would loosen, move or bypass the pinned host key check";
constexpr const char* kUnchecked =
    "runs a command on the runner or reaches the host through something the runner does not "
    "check";
constexpr const char* kForwards = "forwards the runner's agent or ports to the host";
constexpr const char* kUnsupported = "not applied by Switchyard's connections";

// Why an ssh_config keyword (lower case) is refused; nullptr when it is accepted.
const char* refusedKeyword(const std::string& key) {
  static const char* loosen[] = {
      "stricthostkeychecking", "userknownhostsfile", "globalknownhostsfile",
      "knownhostscommand",     "hostkeyalias",       "checkhostip",
      "updatehostkeys",        "verifyhostkeydns",   "nohostauthenticationforlocalhost",
      "hostkeyalgorithms"};
  static const char* unchecked[] = {
      "proxycommand",  "proxyjump",     "localcommand", "permitlocalcommand",
      "remotecommand", "controlmaster", "controlpath",  "controlpersist",
      "hostname",      "include",       "match",        "proxyusefdpass"};
  static const char* forwards[] = {"forwardagent", "forwardx11",    "forwardx11trusted",
                                   "localforward", "remoteforward", "dynamicforward"};
  for (const char* k : loosen)
    if (key == k) return kLoosens;
  for (const char* k : unchecked)
    if (key == k) return kUnchecked;
  for (const char* k : forwards)
    if (key == k) return kForwards;
  if (key == "port" || key == "user" || key == "identityfile" || key == "connecttimeout")
    return nullptr;
  return kUnsupported;
}

std::optional<int> parsePort(std::string_view v) {
  int n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 1 || n > 65535) return std::nullopt;
  return n;
}

bool safeUser(std::string_view u) {
  if (u.empty() || u.size() > 32 || u[0] == '-') return false;
  return std::all_of(u.begin(), u.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

SshOverrides parseSshOptions(const std::vector<std::string>& args) {
  SshOverrides out;
  std::vector<std::string> refused;
  auto apply = [&](const std::string& shown, const std::string& key, const std::string& value) {
    const std::string k = lower(key);
    if (const char* why = refusedKeyword(k)) {
      refused.push_back(shown + " (" + why + ")");
      return;
    }
    if (k == "port") {
      if (auto p = parsePort(value))
        out.port = *p;
      else
        refused.push_back(shown + " (not a port number)");
    } else if (k == "user") {
      if (safeUser(value))
        out.user = value;
      else
        refused.push_back(shown + " (not a user name)");
    } else if (k == "identityfile") {
      if (!value.empty() && value[0] == '/' && value.find_first_of(" \t\n%") == std::string::npos)
        out.identityFile = value;
      else
        refused.push_back(shown + " (must be an absolute path without spaces or %-tokens)");
    } else if (k == "connecttimeout") {
      auto p = parsePort(value);  // a positive number of seconds
      if (p)
        out.connectTimeout = std::chrono::seconds(*p);
      else
        refused.push_back(shown + " (not a number of seconds)");
    }
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a[0] != '-') {
      refused.push_back("'" + a + "' (not an ssh option)");
      continue;
    }
    const char flag = a[1];
    // The flag's argument: the rest of this word, else the next word.
    auto argument = [&](std::string& value) {
      if (a.size() > 2) {
        value = a.substr(2);
        return true;
      }
      if (i + 1 >= args.size()) return false;
      value = args[++i];
      return true;
    };
    std::string value;
    switch (flag) {
      case 'o': {
        if (!argument(value)) {
          refused.push_back("-o (no option follows)");
          break;
        }
        auto sep = value.find_first_of("= \t");
        std::string key = value.substr(0, sep);
        std::string v = sep == std::string::npos ? "" : std::string(trim(value.substr(sep + 1)));
        if (!v.empty() && v[0] == '=') v = std::string(trim(v.substr(1)));
        apply(value, key, v);
        break;
      }
      case 'p':
      case 'l':
      case 'i': {
        if (!argument(value)) {
          refused.push_back(a + " (no value follows)");
          break;
        }
        const char* key = flag == 'p' ? "Port" : flag == 'l' ? "User" : "IdentityFile";
        apply(std::string("-") + flag + " " + value, key, value);
        break;
      }
      case 'J':
      case 'F':
      case 'S':
      case 'W':
      case 'E':
        if (a.size() == 2 && i + 1 < args.size()) value = " " + args[++i];
        refused.push_back(a + value + " (" + (flag == 'E' ? kUnsupported : kUnchecked) + ")");
        break;
      case 'A':
      case 'L':
      case 'R':
      case 'D':
      case 'X':
      case 'Y':
        if ((flag == 'L' || flag == 'R' || flag == 'D') && a.size() == 2 && i + 1 < args.size())
          value = " " + args[++i];
        refused.push_back(a + value + " (" + kForwards + ")");
        break;
      default:
        refused.push_back(a + " (" + kUnsupported + ")");
    }
  }
  if (!refused.empty())
    throw InputError("deployment.sshOptions refused: " + join(refused, "; ") +
                     ". Accepted: -p/Port, -l/User, -i/IdentityFile (absolute), ConnectTimeout; "
                     "host keys always come from the runner's pinned known_hosts");
  return out;
}

}  // namespace runner::deploy
