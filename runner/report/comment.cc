#include "runner/report/comment.h"

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/report/mapping.h"
#include "runner/report/markdown.h"

namespace runner::report {

using nlohmann::json;

namespace {

constexpr size_t kMaxLogBytes = 50000;
constexpr size_t kMaxSummaryBytes = 60000;
constexpr size_t kOpenDetailsUpTo = 3;  // closure sections shown unfolded when this few

json optString(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }
json optInt(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

std::optional<std::string> getOptString(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return std::nullopt;
  return j[key].get<std::string>();
}
std::optional<int64_t> getOptInt(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_integer()) return std::nullopt;
  return j[key].get<int64_t>();
}

std::string lockedText(const std::optional<LockedSummary>& s) {
  if (!s) return "–";
  std::string out;
  if (s->rev)
    out = codeSpan(shortSha(*s->rev, 12));
  else if (s->narHash)
    out = codeSpan(s->narHash->substr(0, 19));
  else
    out = "?";
  if (s->lastModified && *s->lastModified > 0)
    out += " (" + formatUtcMillis(*s->lastModified * 1000).substr(0, 10) + ")";
  return out;
}

// The reasons as markdown: words escaped, names and paths as code spans.
std::string reasonsMarkdown(const HostPlan& host) {
  ReasonStyle style;
  style.code = [](std::string_view s) { return codeSpan(s); };
  style.text = [](std::string_view s) { return escapeMarkdown(s); };
  style.none = "–";
  return describeReasons(host, style);
}

const char* emojiFor(HostState s) {
  switch (s) {
    case HostState::Pending:
    case HostState::Running:
      return "⏳";
    case HostState::Succeeded:
      return "✅";
    case HostState::NotAffected:
      return "⚪";
    case HostState::Failed:
      return "❌";
    case HostState::RolledBack:
      return "↩️";
    default:
      return "⚠️";
  }
}

RunView runFrom(const json& j) {
  RunView r;
  r.id = j.at("id").get<int64_t>();
  r.url = j.value("url", "");
  r.sha = j.value("sha", "");
  r.baseSha = j.value("base_sha", "");
  r.state = runStateFrom(j.value("state", "running"));
  r.error = j.value("error", "");
  r.supersededBy = getOptInt(j, "superseded_by");
  return r;
}

RunHostView hostFrom(const json& j) {
  RunHostView h;
  h.host = j.at("host").get<std::string>();
  h.stage = stageFrom(j.at("stage").get<std::string>());
  h.state = hostStateFrom(j.at("state").get<std::string>());
  h.summary = j.value("summary", "");
  h.outPath = getOptString(j, "out");
  h.baseOutPath = getOptString(j, "base_out");
  h.startedAt = getOptInt(j, "started_at");
  h.finishedAt = getOptInt(j, "finished_at");
  return h;
}

// Hosts as the plan implies them before any build: affected ones wait to build.
std::vector<RunHostView> hostsFromPlan(const Plan& plan) {
  std::vector<RunHostView> out;
  for (const auto& h : plan.hosts) {
    if (h.hasReason(ReasonKind::RemovedHost)) continue;
    RunHostView v;
    v.host = h.name;
    v.stage = h.affected ? Stage::Build : Stage::Plan;
    v.state = h.affected ? HostState::Pending : HostState::NotAffected;
    out.push_back(std::move(v));
  }
  return out;
}

bool wasBuilt(const RunHostView& h) {
  if (!h.outPath) return false;
  if (h.stage == Stage::Deploy) return true;  // it got to deploy, so it built
  return h.stage == Stage::Build && h.state == HostState::Succeeded;
}

std::string runStatusWords(const RunView& run) {
  switch (run.state) {
    case RunState::Queued:
      return "queued";
    case RunState::Running:
      return "running";
    case RunState::Succeeded:
      return "finished";
    case RunState::Failed:
      return "failed";
    case RunState::Superseded:
      return run.supersededBy ? "superseded by run #" + std::to_string(*run.supersededBy)
                              : std::string("superseded");
    case RunState::Interrupted:
      return "interrupted";
    case RunState::Cancelled:
      return "cancelled";
  }
  return "running";
}

std::string versionsText(const PackageChange& c) {
  auto list = [](const std::vector<std::string>& v) {
    std::vector<std::string> shown;
    for (const auto& s : v) shown.push_back(s.empty() ? "ε" : s);
    return join(shown, ", ");
  };
  if (c.added) return "new: " + list(c.after);
  if (c.removed) return "removed: " + list(c.before);
  if (c.before.empty() && c.after.empty()) return "";
  return list(c.before) + " → " + list(c.after);
}

std::string diffSummary(const ClosureDiff& d) {
  std::vector<std::string> parts;
  auto count = [&](int n, const char* one, const char* many) {
    if (n > 0) parts.push_back(std::to_string(n) + " " + (n == 1 ? one : many));
  };
  count(d.versionChanges(), "version changed", "versions changed");
  count(d.added(), "package added", "packages added");
  count(d.removed(), "package removed", "packages removed");
  if (d.sizeDeltaKiB != 0) parts.push_back(formatKiB(d.sizeDeltaKiB));
  return parts.empty() ? "no package changes" : join(parts, ", ");
}

}  // namespace

json commentModel(const RunView& run, const Plan* plan, const std::vector<RunHostView>& hosts) {
  json m;
  m["run"] = {{"id", run.id},
              {"url", run.url},
              {"sha", run.sha},
              {"base_sha", run.baseSha},
              {"state", toString(run.state)},
              {"error", run.error},
              {"superseded_by", optInt(run.supersededBy)}};
  m["plan"] = plan ? json(*plan) : json(nullptr);
  json hs = json::array();
  for (const auto& h : hosts)
    hs.push_back({{"host", h.host},
                  {"stage", toString(h.stage)},
                  {"state", toString(h.state)},
                  {"summary", h.summary},
                  {"out", optString(h.outPath)},
                  {"base_out", optString(h.baseOutPath)},
                  {"started_at", optInt(h.startedAt)},
                  {"finished_at", optInt(h.finishedAt)}});
  m["hosts"] = std::move(hs);
  return m;
}

std::string resultWords(const RunView& run, const RunHostView& host) {
  return std::string(emojiFor(host.state)) + " " + describeHost(run, host.stage, host);
}

json planTableView(const Plan& plan, const std::map<std::string, std::string>* results) {
  json hosts = json::array();
  for (const auto& h : plan.hosts) {
    json row = {{"name_code", codeSpan(h.name)},
                {"affected", h.affected ? "**yes**" : "no"},
                {"why", reasonsMarkdown(h)}};
    if (results) {
      auto it = results->find(h.name);
      row["result"] = it == results->end() ? "" : it->second;
    }
    hosts.push_back(std::move(row));
  }
  json inputs = json::array();
  for (const auto& c : plan.inputsChanged) {
    std::string change = "updated";
    if (c.added) {
      change = "added";
    } else if (c.removed) {
      change = "removed";
    } else if (c.transitive && c.path.size() > 1) {
      change = "via " + join(std::vector<std::string>(c.path.begin() + 1, c.path.end()), "/");
    }
    inputs.push_back({{"name_code", codeSpan(c.name)},
                      {"change", change},
                      {"old", lockedText(c.oldLocked)},
                      {"new", lockedText(c.newLocked)}});
  }
  size_t files = plan.filesChanged.size();
  return {{"hosts", std::move(hosts)},
          {"with_results", results != nullptr},
          {"has_inputs", !inputs.empty()},
          {"inputs", std::move(inputs)},
          {"files_line", files == 0 ? json(nullptr)
                                    : json(std::to_string(files) +
                                           (files == 1 ? " file changed." : " files changed."))},
          {"warnings", plan.warnings}};
}

std::string CommentRenderer::render(const json& model) const {
  RunView run;
  std::optional<Plan> plan;
  std::vector<RunHostView> hosts;
  try {
    run = runFrom(model.at("run"));
    if (!model.at("plan").is_null()) plan = model["plan"].get<Plan>();
    for (const auto& h : model.at("hosts")) hosts.push_back(hostFrom(h));
  } catch (const json::exception& e) {
    throw InputError(std::string("malformed comment model: ") + describe(e));
  }
  if (hosts.empty() && plan) hosts = hostsFromPlan(*plan);

  std::map<std::string, std::string> results;
  for (const auto& h : hosts) results[h.host] = resultWords(run, h);

  // closure diffs of the affected hosts that were built (computed once, rendered maybe twice)
  struct Section {
    std::string host, summary, note;
    std::optional<ClosureDiff> diff;
  };
  std::vector<Section> sections;
  if (differ_) {
    for (const auto& h : hosts) {
      if (!wasBuilt(h)) continue;
      if (plan && plan->host(h.host) && !plan->host(h.host)->affected) continue;
      Section s{h.host, "", "", std::nullopt};
      if (!h.baseOutPath) {
        s.summary = "new toplevel";
        s.note = "No toplevel of the base commit to compare with.";
      } else if (*h.baseOutPath == *h.outPath) {
        s.summary = "same toplevel as the base commit";
      } else {
        std::string error;
        s.diff = differ_->diff(*h.baseOutPath, *h.outPath, &error);
        if (s.diff) {
          s.summary = diffSummary(*s.diff);
        } else {
          s.summary = "closure diff unavailable";
          s.note = "Closure diff unavailable: " + oneLine(error);
        }
      }
      sections.push_back(std::move(s));
    }
  }

  auto renderWith = [&](size_t packagesPerHost) {
    json closures = json::array();
    for (const auto& s : sections) {
      json packages = json::array();
      size_t more = 0;
      if (s.diff) {
        for (const auto& c : s.diff->changes) {
          if (packages.size() >= packagesPerHost) {
            ++more;
            continue;
          }
          packages.push_back({{"name", c.name},
                              {"versions", versionsText(c)},
                              {"size", c.sizeDeltaKiB ? formatKiB(*c.sizeDeltaKiB) : ""}});
        }
      }
      closures.push_back(
          {{"host_html", htmlEscape(s.host)},
           {"summary_html", htmlEscape(s.summary)},
           {"open", sections.size() <= kOpenDetailsUpTo},
           {"has_packages", !packages.empty()},
           {"packages", std::move(packages)},
           {"more", more ? json("… and " + std::to_string(more) + " more") : json(nullptr)},
           {"note", s.note.empty() ? json(nullptr) : json(s.note)}});
    }
    json view = {
        {"title", plan                            ? describePlan(*plan)
                  : run.state == RunState::Failed ? std::string("plan failed")
                                                  : std::string("planning")},
        {"commit", codeSpan(shortSha(run.sha))},
        {"base", run.baseSha.empty() ? json(nullptr) : json(codeSpan(shortSha(run.baseSha)))},
        // no run: a plan shown before anything runs (switchyard plan --markdown)
        {"run_id", run.id ? json(std::to_string(run.id)) : json(nullptr)},
        {"run_url", linkTarget(run.url)},
        {"status", runStatusWords(run)},
        {"error", run.error.empty() ? json(nullptr) : json(truncateUtf8(oneLine(run.error), 2000))},
        {"plan", plan ? planTableView(*plan, run.id ? &results : nullptr) : json(nullptr)},
        {"has_closures", !closures.empty()},
        {"closures", std::move(closures)}};
    return templates_.render("pr_comment", view);
  };

  std::string body = renderWith(limits_.packagesPerHost);
  if (body.size() > limits_.maxBytes)
    body = renderWith(std::min<size_t>(limits_.packagesPerHost, 5));
  if (body.size() > limits_.maxBytes) {
    static constexpr std::string_view kCut =
        "\n\n*(cut: the comment is longer than a forge keeps; the run page has everything)*\n";
    body = truncateUtf8(body, limits_.maxBytes - kCut.size()) + std::string(kCut);
  }
  return body;
}

std::string renderCheckRunSummary(const Templates& templates, const RunView& run,
                                  const std::string& description, const Plan* plan,
                                  const std::string& logTail) {
  json view = {{"description", description},
               {"plan", plan ? planTableView(*plan, nullptr) : json(nullptr)},
               {"log", logTail.empty() ? json(nullptr)
                                       : json(codeBlock(tailUtf8(logTail, kMaxLogBytes), "text"))},
               {"run_id", std::to_string(run.id)},
               {"run_url", linkTarget(run.url)}};
  return truncateUtf8(templates.render("check_run", view), kMaxSummaryBytes);
}

}  // namespace runner::report
