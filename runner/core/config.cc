#include "runner/core/config.h"

#include <charconv>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner {

const char* toString(UntrustedBuild b) {
  switch (b) {
    case UntrustedBuild::Approve:
      return "approve";
    case UntrustedBuild::Always:
      return "always";
    case UntrustedBuild::Never:
      return "never";
  }
  return "approve";
}

const char* toString(DeployPolicy p) {
  switch (p) {
    case DeployPolicy::Auto:
      return "auto";
    case DeployPolicy::Manual:
      return "manual";
    case DeployPolicy::Never:
      return "never";
  }
  return "auto";
}

const char* toString(SwitchAction a) {
  switch (a) {
    case SwitchAction::Switch:
      return "switch";
    case SwitchAction::Boot:
      return "boot";
    case SwitchAction::Test:
      return "test";
  }
  return "switch";
}

const RepoConfig* Config::findRepo(std::string_view forge, std::string_view name) const {
  for (const auto& r : repos)
    if (r.forge.value_or("") == forge && toLower(r.name) == toLower(name)) return &r;
  return nullptr;
}

std::vector<const RepoConfig*> Config::reposNamed(std::string_view name) const {
  std::vector<const RepoConfig*> out;
  for (const auto& r : repos)
    if (toLower(r.name) == toLower(name)) out.push_back(&r);
  return out;
}

std::string Config::effectivePublicUrl() const {
  std::string u = publicUrl.empty() ? "http://" + listen : publicUrl;
  while (!u.empty() && u.back() == '/') u.pop_back();
  return u;
}

std::string Target::toString() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::string out = user.empty() ? h : user + "@" + h;
  if (port != 22) out += ":" + std::to_string(port);
  return out;
}

namespace {
// A user or host name as ssh accepts it without reading it as an option; `ipv6` also allows
// the ':' and '%' (zone) of a bracketed IPv6 address.
bool isTargetWord(std::string_view s, bool ipv6) {
  if (s.empty() || s.front() == '-') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || (ipv6 && (c == ':' || c == '%'));
    if (!ok) return false;
  }
  return true;
}
}  // namespace

Target parseTarget(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InputError("invalid target '" + std::string(text) + "': " + why +
                      " (expected [user@]host[:port], IPv6 in brackets)");
  };
  Target t;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    t.user = std::string(rest.substr(0, at));
    if (t.user.empty()) throw bad("empty user");
    rest = rest.substr(at + 1);
  }
  std::string_view portText;
  const bool bracketed = !rest.empty() && rest.front() == '[';
  if (bracketed) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) throw bad("unclosed '['");
    t.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw bad("unexpected text after ']'");
      portText = rest.substr(1);
    }
  } else {
    auto colon = rest.find(':');
    if (colon != std::string_view::npos && rest.find(':', colon + 1) != std::string_view::npos)
      throw bad("IPv6 addresses must be in brackets");
    t.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) portText = rest.substr(colon + 1);
  }
  if (t.host.empty()) throw bad("empty host");
  // Targets also come from the flake (Clan/Colmena options) and end up on `ssh`'s command line
  // through `nix copy --to ssh://user@host`: a leading '-' would be read as an ssh option
  // ("-oProxyCommand=…" runs a command on the runner), so only name characters pass.
  if (!isTargetWord(t.user, false))
    throw bad("user must be letters, digits, '.', '_' or '-', not starting with '-'");
  if (!isTargetWord(t.host, bracketed)) throw bad("host must be a host name or an IP address");
  if (!portText.empty() || (rest.size() && rest.back() == ':')) {
    int port = 0;
    auto [p, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
    if (ec != std::errc() || p != portText.data() + portText.size() || port < 1 || port > 65535)
      throw bad("port must be 1-65535");
    t.port = port;
  }
  return t;
}

std::chrono::milliseconds parseDuration(std::string_view text) {
  std::string_view s = text;
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n < 0)
    throw InputError("invalid duration '" + std::string(text) + "' (e.g. 30s, 5m, 1h)");
  std::string_view unit(p, static_cast<size_t>(s.data() + s.size() - p));
  using namespace std::chrono;
  if (unit.empty() || unit == "s") return seconds(n);
  if (unit == "ms") return milliseconds(n);
  if (unit == "m") return minutes(n);
  if (unit == "h") return hours(n);
  if (unit == "d") {  // retry windows are days long (retry_unreachable: 7d)
    if (n > 36500) throw InputError("invalid duration '" + std::string(text) + "': over 100 years");
    return hours(n * 24);
  }
  throw InputError("invalid duration '" + std::string(text) + "': unknown unit '" +
                   std::string(unit) + "' (use ms, s, m, h or d)");
}

std::string RemoteBuilderConfig::uri() const {
  return protocol + "://" + (user.empty() ? "" : user + "@") + host;
}

RemoteBuilderConfig parseBuilderUri(std::string_view uri) {
  RemoteBuilderConfig b;
  auto sep = uri.find("://");
  if (sep == std::string_view::npos)
    throw InputError("builder '" + std::string(uri) +
                     "': expected ssh://[user@]host[:port] or ssh-ng://[user@]host[:port]");
  b.protocol = std::string(uri.substr(0, sep));
  if (b.protocol != "ssh" && b.protocol != "ssh-ng")
    throw InputError("builder '" + std::string(uri) + "': protocol '" + b.protocol +
                     "' is not ssh or ssh-ng (the runner pins builders' host keys, which only "
                     "ssh stores have)");
  std::string_view rest = uri.substr(sep + 3);
  if (rest.find_first_of("/?#") != std::string_view::npos)
    throw InputError("builder '" + std::string(uri) +
                     "': only [user@]host[:port] may follow the protocol (set keys and options "
                     "in the builder's fields)");
  Target t;
  try {
    t = parseTarget(rest);
  } catch (const InputError& e) {
    throw InputError("builder '" + std::string(uri) + "': " + e.what());
  }
  if (t.host.find(':') != std::string::npos)
    throw InputError("builder '" + std::string(uri) +
                     "': IPv6 addresses are not supported for builders (Nix 2.8 hands the "
                     "URI's host to ssh as is); use a host name");
  b.user = t.user;
  b.host = t.host;
  b.port = t.port;
  return b;
}

std::vector<RemoteBuilderConfig> parseNixBuilders(std::string_view text) {
  std::vector<RemoteBuilderConfig> out;
  std::string entries(text);
  for (char& c : entries)
    if (c == '\n') c = ';';
  for (const auto& raw : split(entries, ';')) {
    std::string entry(trim(raw));
    if (entry.empty() || entry.front() == '#') continue;
    if (entry.front() == '@')
      throw InputError("builders entry '" + entry +
                       "': '@file' is not supported; list the builders (the runner pins each "
                       "one's host key and probes it before a build)");
    std::vector<std::string> f;
    for (auto& w : split(entry, ' '))
      for (auto& x : split(w, '\t'))
        if (!x.empty()) f.push_back(x);
    if (f.size() > 8) throw InputError("builders entry '" + entry + "': more than 8 fields");
    RemoteBuilderConfig b = parseBuilderUri(f[0]);
    auto field = [&](size_t i) -> std::optional<std::string> {
      if (i >= f.size() || f[i] == "-") return std::nullopt;
      return f[i];
    };
    auto number = [&](size_t i, const char* what, int min) -> std::optional<int> {
      auto v = field(i);
      if (!v) return std::nullopt;
      int n = 0;
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec != std::errc() || p != v->data() + v->size() || n < min)
        throw InputError("builders entry '" + entry + "': " + what + " '" + *v +
                         "' is not a number >= " + std::to_string(min));
      return n;
    };
    auto list = [&](size_t i) {
      std::vector<std::string> l;
      if (auto v = field(i))
        for (auto& x : split(*v, ','))
          if (!x.empty()) l.push_back(x);
      return l;
    };
    b.systems = list(1);
    if (auto k = field(2)) {
      if (k->front() != '/')
        throw InputError("builders entry '" + entry + "': the ssh key '" + *k +
                         "' must be an absolute path");
      b.identityFile = *k;
    }
    if (auto n = number(3, "max-jobs", 0)) b.maxJobs = *n;
    if (auto n = number(4, "speed factor", 1)) b.speedFactor = *n;
    b.features = list(5);
    b.mandatoryFeatures = list(6);
    if (auto k = field(7)) {
      if (k->find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
          std::string::npos)
        throw InputError("builders entry '" + entry + "': the host key field is not base64");
      b.publicHostKey = *k;
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace runner
