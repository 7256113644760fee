#include "runner/report/reporting.h"

namespace runner::report {

Reporting::Reporting(store::Database& db, const Forges& forges, nix::NixCli* nix, Clock& clock,
                     Logger& log, ReportingOptions options)
    : templates_(options.templatesDir ? Templates::withOverrides(*options.templatesDir)
                                      : Templates::builtIn()) {
  if (nix) differ_ = std::make_unique<NixClosureDiffer>(*nix);
  renderer_ = std::make_unique<CommentRenderer>(templates_, differ_.get());
  SenderOptions so = options.sender;
  for (const auto& [name, type] : options.forgeTypes)
    if (!so.spacing.count(name)) so.spacing[name] = spacingFor(type);
  sender_ = std::make_unique<OutboxSender>(db, forges, *renderer_, clock, log, so);
  OutboxSender* sender = sender_.get();
  reporter_ = std::make_unique<ForgeReporter>(
      db, forges, templates_, clock, log,
      ReporterOptions{options.progressHostLimit, [sender] { sender->wake(); }, options.runDeploys,
                      options.foldStatusesAbove});
  gateway_ = std::make_unique<ForgeGateway>(db, forges, clock, log, [sender] { sender->wake(); });
}

Reporting::~Reporting() { stop(); }

}  // namespace runner::report
