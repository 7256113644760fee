#include "runner/deploy/deploy.h"

namespace runner::deploy {

std::string_view resultName(HostResult r) {
  switch (r) {
    case HostResult::Succeeded:
      return "succeeded";
    case HostResult::Failed:
      return "failed";
    case HostResult::RolledBack:
      return "rolled-back";
    case HostResult::Unreachable:
      return "unreachable";
    case HostResult::Refused:
      return "refused";
    case HostResult::Skipped:
      return "skipped";
    case HostResult::DryRun:
      return "dry-run";
  }
  return "unknown";
}

std::string resultLabel(HostResult r) {
  if (r == HostResult::RolledBack) return "rolled back";
  if (r == HostResult::DryRun) return "dry run";
  return std::string(resultName(r));
}

bool isFailure(HostResult r) {
  return r == HostResult::Failed || r == HostResult::RolledBack || r == HostResult::Unreachable ||
         r == HostResult::Refused;
}

std::string_view stepName(Step s) {
  switch (s) {
    case Step::Lock:
      return "lock";
    case Step::Ancestry:
      return "ancestry";
    case Step::Connect:
      return "connect";
    case Step::Inspect:
      return "inspect";
    case Step::Copy:
      return "copy";
    case Step::Activate:
      return "activate";
    case Step::Confirm:
      return "confirm";
    case Step::Verify:
      return "verify";
    case Step::Record:
      return "record";
  }
  return "unknown";
}

std::chrono::milliseconds HostOutcome::duration(Step s) const {
  std::chrono::milliseconds total{0};
  for (const auto& [step, d] : durations)
    if (step == s) total += d;
  return total;
}

}  // namespace runner::deploy
