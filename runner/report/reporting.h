// Forge reporting in one piece, for runner/app to wire (DESIGN.md §1 "reporter"): the
// templates, the closure differ, the comment renderer, the outbox sender on its own thread,
// the RunReporter for the scheduler and the re-run gateway — built from the configured forges
// with the right pacing per forge type, and the reporter waking the sender whenever it queues
// something.
//
//   report::Reporting reporting(db, forges, &nixCli, clock, log,
//                               {.forgeTypes = {{"home", "gitea"}, {"gh", "github"}},
//                                .runDeploys = [&](const RunView& r) { … }});
//   reporting.start();                       // the sender thread
//   Scheduler(… reporting.reporter() …);      // RunReporter&
//   reporting.gateway().handle(event);       // comment commands, check_run/check_suite
//   …
//   reporting.stop();                        // before the Forge objects go away
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "runner/core/clock.h"
#include "runner/core/log.h"
#include "runner/core/run.h"
#include "runner/report/calls.h"
#include "runner/report/closure_diff.h"
#include "runner/report/comment.h"
#include "runner/report/forge_reporter.h"
#include "runner/report/gateway.h"
#include "runner/report/sender.h"
#include "runner/report/templates.h"
#include "runner/store/database.h"

namespace runner::nix {
class NixCli;
}

namespace runner::report {

struct ReportingOptions {
  std::map<std::string, std::string, std::less<>> forgeTypes;  // name -> "gitea"|"forgejo"|"github"
  std::optional<std::filesystem::path> templatesDir;           // overrides of templates/*.mustache
  std::function<bool(const RunView&)> runDeploys;              // ReporterOptions::runDeploys
  size_t progressHostLimit = 20;
  std::map<std::string, size_t> foldStatusesAbove;  // ReporterOptions::foldStatusesAbove
  SenderOptions sender;  // spacing per forge is filled from forgeTypes unless set
};

class Reporting {
 public:
  // `db`, the Forge objects, `nix` (may be null: no closure diffs), `clock` and `log` must
  // outlive this object. Throws InputError when a template override cannot be read.
  Reporting(store::Database& db, const Forges& forges, nix::NixCli* nix, Clock& clock, Logger& log,
            ReportingOptions options = {});
  ~Reporting();  // stop()

  RunReporter& reporter() { return *reporter_; }
  ForgeGateway& gateway() { return *gateway_; }
  OutboxSender& sender() { return *sender_; }

  void start() { sender_->start(); }
  void stop() noexcept { sender_->stop(); }

 private:
  Templates templates_;
  std::unique_ptr<NixClosureDiffer> differ_;
  std::unique_ptr<CommentRenderer> renderer_;
  std::unique_ptr<OutboxSender> sender_;
  std::unique_ptr<ForgeReporter> reporter_;
  std::unique_ptr<ForgeGateway> gateway_;
};

}  // namespace runner::report
