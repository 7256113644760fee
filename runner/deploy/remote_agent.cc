#include "runner/deploy/remote_agent.h"

#include <charconv>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner::deploy {
namespace {

// The agent. Keep it POSIX sh (dash, bash, busybox ash) and small; every path it touches is
// below $D except the system profile.
constexpr const char* kAgent = R"SH(#!/bin/sh
# Switchyard deploy agent: activation detached from the SSH session, and the watchdog that
# rolls back when the runner does not confirm in time. Written by runner/deploy/remote_agent.cc.
#   agent.sh start   DIR STORE_PATH PROFILE PREV_GEN CONFIRM_SECS SWITCH_SECS DETACH ACTION
#   (ACTION: switch | boot | test, what switch-to-configuration is asked to do)
#   agent.sh run     DIR                     (the detached watchdog; started by `start`)
#   agent.sh watch   DIR OFFSET PHASE WAIT   (long poll: status once something changed)
#   agent.sh status  DIR [OFFSET]
#   agent.sh confirm DIR
#   agent.sh reject  DIR REASON
# Loops use shell builtins where they can (read, test): on a busy host every fork counts.
set -u
cmd=${1:-}
D=${2:-}
if [ -z "$cmd" ] || [ -z "$D" ]; then
  echo "usage: agent.sh start|run|watch|status|confirm|reject DIR ..." >&2
  exit 2
fi

# put FILE VALUE: atomically (readers never see half a value); set FILE VALUE: in place, for
# values written before the phase change that makes them matter.
put() { printf '%s\n' "$2" > "$D/$1.tmp" && mv -f "$D/$1.tmp" "$D/$1"; }
set_() { printf '%s\n' "$2" > "$D/$1"; }
# val FILE: the file's first line in $v ("" when missing), without a process.
val() { v=; if [ -f "$D/$1" ]; then IFS= read -r v < "$D/$1" || true; fi; }
log() { printf 'switchyard: %s\n' "$*" >> "$D/activation.log"; }
phase() { put phase "$1"; }
logsize() {
  size=0
  if [ -f "$D/activation.log" ]; then size=$(wc -c < "$D/activation.log"); size=$((size)); fi
}

# The first decision wins, claimed and recorded in one step: the decision is the target of the
# symlink $D/decision (symlink(2) is atomic and fails when the name exists), so there is never a
# claimed decision without its text. Returns 0 when this call decided.
decide() { ln -s "$1" "$D/decision" 2>/dev/null; }
# decision: the decision in $v ("" while there is none).
decision() { v=; if [ -L "$D/decision" ]; then v=$(readlink "$D/decision"); fi; }
wait_decision() {
  i=0
  while [ ! -L "$D/decision" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  decision
}

# run_bounded SECS CMD...: CMD in its own session, output to the log; its whole process group
# is killed after SECS. Returns CMD's status, 124 when it ran out of time.
run_bounded() {
  secs=$1
  shift
  rm -f "$D/timed-out"
  setsid "$@" >> "$D/activation.log" 2>&1 < /dev/null &
  cpid=$!
  setsid sh -c "sleep $secs; : > '$D/timed-out'; kill -TERM -$cpid; sleep 5; kill -KILL -$cpid" > /dev/null 2>&1 < /dev/null &
  tpid=$!
  wait "$cpid"
  rc=$?
  kill -TERM -"$tpid" 2>/dev/null
  if [ -f "$D/timed-out" ]; then rc=124; fi
  return $rc
}

rollback() {
  set_ reason "$1"
  phase rolling-back
  if [ -z "$PREV_GEN" ]; then
    log "$1; there is no previous generation to return to"
    phase failed
    exit 0
  fi
  log "$1; rolling back to generation $PREV_GEN"
  # `test` never changed the profile: only the running system goes back.
  if { [ "$ACTION" = test ] ||
       nix-env -p "$PROFILE" --switch-generation "$PREV_GEN" >> "$D/activation.log" 2>&1; } &&
     run_bounded "$SWITCH_SECS" "$PROFILE-$PREV_GEN-link/bin/switch-to-configuration" "$ACTION"; then
    log "rolled back to generation $PREV_GEN"
    phase rolled-back
  else
    log "ROLLBACK FAILED"
    phase rollback-failed
  fi
  exit 0
}

status() {
  off=${1:-0}
  logsize
  val phase; echo "phase=$v"
  val switch.rc; echo "rc=$v"
  val new-gen; echo "newgen=$v"
  decision; echo "decision=$v"
  val reason; echo "reason=$v"
  val detach; echo "detach=$v"
  echo "size=$size"
  echo "--log--"
  if [ "$size" -gt "$off" ]; then
    tail -c +$((off + 1)) "$D/activation.log" | head -c $((size - off))
  fi
}

case "$cmd" in
start)
  STORE_PATH=$3 PROFILE=$4 PREV_GEN=$5 CONFIRM_SECS=$6 SWITCH_SECS=$7 DETACH=${8:-auto}
  ACTION=${9:-switch}
  case "$ACTION" in switch|boot|test) ;; *) echo "unknown action $ACTION" >&2; exit 2 ;; esac
  if [ ! -x "$STORE_PATH/bin/switch-to-configuration" ]; then
    echo "$STORE_PATH/bin/switch-to-configuration is missing on this host" >&2
    exit 3
  fi
  base=${D%/*}
  mkdir -p "$D"
  # One start at a time on this host (when it has flock): the check for an active watchdog
  # and the launch of ours happen under the lock, so two starts cannot both pass the check.
  if command -v flock > /dev/null 2>&1; then
    exec 9> "$base/start.lock"
    if ! flock -w 10 9; then echo "another deploy is starting on this host" >&2; exit 4; fi
  fi
  # Another deploy's watchdog still deciding (its runner died?): never run two at once.
  n=0
  for other in "$base"/deploy-*; do
    [ -d "$other" ] || continue
    n=$((n + 1))
    [ "$other" != "$D" ] && [ -f "$other/pid" ] || continue
    p=; IFS= read -r p < "$other/phase" || true
    case "$p" in confirmed|rolled-back|rollback-failed|failed|"") continue ;; esac
    d=; [ -L "$other/decision" ] && d=$(readlink "$other/decision")
    [ "$d" = confirmed ] && continue
    pid=; IFS= read -r pid < "$other/pid" || true
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "another deploy's watchdog is still active on this host ($other, phase $p)" >&2
      exit 4
    fi
  done
  # The generation the runner recorded must still be the current one: rolling back to it after
  # someone else switched the host in between would restore the wrong system.
  cur=$(readlink "$PROFILE" 2>/dev/null || true)
  cur=${cur##*/}
  want=
  [ -z "$PREV_GEN" ] || want="${PROFILE##*/}-$PREV_GEN-link"
  if [ "$cur" != "$want" ]; then
    echo "$PROFILE changed since the runner looked: it is '${cur:-nothing}', not '${want:-nothing}'; not switching" >&2
    exit 3
  fi
  # Keep the last ten deploys' files.
  if [ $n -gt 10 ]; then
    ls -1d "$base"/deploy-* | sort -r | tail -n +11 | while read -r old; do
      [ "$old" = "$D" ] || rm -rf "$old"
    done
  fi
  {
    echo "STORE_PATH='$STORE_PATH'"
    echo "PROFILE='$PROFILE'"
    echo "PREV_GEN='$PREV_GEN'"
    echo "CONFIRM_SECS='$CONFIRM_SECS'"
    echo "SWITCH_SECS='$SWITCH_SECS'"
    echo "ACTION='$ACTION'"
  } > "$D/params"
  : > "$D/activation.log"
  phase armed
  if [ "$DETACH" = auto ]; then
    if [ -d /run/systemd/system ] && command -v systemd-run > /dev/null 2>&1; then
      DETACH=systemd
    else
      DETACH=setsid
    fi
  fi
  set_ detach "$DETACH"
  case "$DETACH" in
    systemd)
      systemd-run --unit="switchyard-${D##*/}" --collect --quiet --setenv=PATH="$PATH" \
        /bin/sh "$D/agent.sh" run "$D" 9>&- || { decide "rejected: systemd-run failed"; exit 5; } ;;
    *)
      setsid nohup /bin/sh "$D/agent.sh" run "$D" < /dev/null > "$D/agent.log" 2>&1 9>&- & ;;
  esac
  # Return only once the watchdog runs on its own (past setsid), so nothing that cleans up
  # after this session's processes can catch it.
  i=0
  while [ ! -f "$D/pid" ]; do
    if [ $i -ge 200 ]; then
      # Too late to start now: a watchdog that still comes up sees this decision and stops
      # (or rolls back). It writes pid before it looks, so with no pid here it will stop.
      why="the watchdog did not start within 4s (see $D/agent.log)"
      if decide "rejected: $why" && [ ! -f "$D/pid" ]; then set_ reason "$why"; phase failed; fi
      echo "$why" >&2
      exit 5
    fi
    sleep 0.02
    i=$((i + 1))
  done
  echo "started ($DETACH)"
  ;;
run)
  . "$D/params"
  trap '' HUP
  echo $$ > "$D/pid"
  if [ -L "$D/decision" ]; then  # `start` gave up on us: nothing has been changed, keep it so
    decision
    set_ reason "${v#rejected: }"
    phase failed
    exit 0
  fi
  ACTION=${ACTION:-switch}
  if [ "$ACTION" != test ]; then  # `test` activates without making a generation
    phase setting-profile
    if ! nix-env -p "$PROFILE" --set "$STORE_PATH" >> "$D/activation.log" 2>&1; then
      set_ reason "setting the system profile failed"
      phase failed
      exit 0
    fi
    set_ new-gen "$(readlink "$PROFILE")"
  fi
  phase switching
  run_bounded "$SWITCH_SECS" "$STORE_PATH/bin/switch-to-configuration" "$ACTION"
  rc=$?
  set_ switch.rc "$rc"
  if [ "$rc" -ne 0 ]; then
    if [ "$rc" = 124 ] && [ -f "$D/timed-out" ]; then
      why="switch-to-configuration timed out after ${SWITCH_SECS}s"
    else
      why="switch-to-configuration exited with status $rc"
    fi
    decide "failed: $why" || true
    rollback "activation failed: $why"
  fi
  phase awaiting-confirmation
  # The deadline in ticks of 0.1 s, checked against the clock once a second (ticks run late
  # on a busy host).
  deadline=$(( $(date +%s) + CONFIRM_SECS ))
  ticks=0
  while :; do
    [ -d "$D" ] || exit 0
    if [ -L "$D/decision" ]; then
      decision
      case "$v" in
        confirmed) phase confirmed; exit 0 ;;
        rejected:*) rollback "${v#rejected: }" ;;
        *) rollback "${v#timeout: }" ;;
      esac
    fi
    ticks=$((ticks + 1))
    if [ $ticks -ge $((CONFIRM_SECS * 10)) ] || { [ $((ticks % 10)) = 0 ] && [ "$(date +%s)" -ge "$deadline" ]; }; then
      # (when the runner decided at the same moment, its decision is there on the next turn)
      if ! decide "timeout: no confirmation within ${CONFIRM_SECS}s"; then
        # Not a lost race but a decision that cannot be written (a full /run): roll back anyway.
        [ -L "$D/decision" ] || unwritable=$((${unwritable:-0} + 1))
        [ "${unwritable:-0}" -lt 20 ] || rollback "no confirmation within ${CONFIRM_SECS}s"
        sleep 0.1
      fi
      continue
    fi
    sleep 0.1
  done
  ;;
watch)
  off=${3:-0}
  seen=${4:-}
  n=$(( ${5:-5} * 20 ))
  i=0
  while [ $i -lt $n ]; do
    val phase
    [ "$v" = "$seen" ] || break
    if [ $((i % 4)) = 0 ]; then logsize; [ "$size" -le "$off" ] || break; fi
    sleep 0.05
    i=$((i + 1))
  done
  status "$off"
  ;;
status)
  status "${3:-0}"
  ;;
confirm|reject)
  val phase
  if [ "$v" != awaiting-confirmation ]; then
    echo "not-ready: $v"
    exit 0
  fi
  if [ "$cmd" = confirm ]; then what=confirmed; else what="rejected: ${3:-rejected by the runner}"; fi
  if decide "$what"; then echo "$cmd"ed; else wait_decision; echo "too-late: $v"; fi
  ;;
*)
  echo "agent.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
)SH";

bool safeWord(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '.' || c == '_' || c == '+' || c == '-' || c == '=';
    if (!ok) return false;
  }
  return !s.empty();
}

std::string agentPath(const std::string& dir) { return dir + "/agent.sh"; }

}  // namespace

const std::string& agentScript() {
  static const std::string script = kAgent;
  return script;
}

std::string agentStartCommand(const AgentParams& p) {
  // These go into the params file between single quotes: allow only path characters.
  for (const std::string* v : {&p.dir, &p.storePath, &p.profile, &p.detach})
    if (!safeWord(*v)) throw InputError("unsafe characters in deploy parameter '" + *v + "'");
  std::string prev = p.previousGeneration ? std::to_string(*p.previousGeneration) : "";
  return "/bin/sh " + shellQuote(agentPath(p.dir)) + " start " + shellQuote(p.dir) + " " +
         shellQuote(p.storePath) + " " + shellQuote(p.profile) + " " + shellQuote(prev) + " " +
         std::to_string(std::max<int64_t>(1, p.confirmTimeout.count())) + " " +
         std::to_string(std::max<int64_t>(1, p.switchTimeout.count())) + " " +
         shellQuote(p.detach) + " " + toString(p.action);
}

std::string agentInstallAndStartCommand(const AgentParams& p) {
  std::string start = agentStartCommand(p);  // validates the parameters
  const std::string dir = shellQuote(p.dir), script = shellQuote(agentPath(p.dir));
  return "umask 077 && mkdir -p " + dir + " && cat > " + script + " && chmod 700 " + script +
         " && " + start;
}

std::string agentWatchCommand(const std::string& dir, size_t logOffset, const std::string& phase,
                              int waitSeconds) {
  return "/bin/sh " + shellQuote(agentPath(dir)) + " watch " + shellQuote(dir) + " " +
         std::to_string(logOffset) + " " + shellQuote(phase) + " " +
         std::to_string(std::max(0, waitSeconds));
}

std::string agentConfirmCommand(const std::string& dir) {
  return "/bin/sh " + shellQuote(agentPath(dir)) + " confirm " + shellQuote(dir);
}

std::string agentRejectCommand(const std::string& dir, const std::string& reason) {
  std::string oneLine;
  for (char c : reason) oneLine += (c == '\n' || c == '\r') ? ' ' : c;
  return "/bin/sh " + shellQuote(agentPath(dir)) + " reject " + shellQuote(dir) + " " +
         shellQuote(truncateUtf8(oneLine, 400));
}

bool AgentStatus::finished() const {
  return phase == "confirmed" || phase == "rolled-back" || phase == "rollback-failed" ||
         phase == "failed";
}

std::optional<AgentStatus> parseAgentStatus(const std::string& text) {
  // The marker line, not the same text inside a value (a reason may quote anything).
  const std::string marker = "--log--\n";
  size_t m = startsWith(text, marker) ? 0 : text.find("\n" + marker);
  if (m == std::string::npos) return std::nullopt;
  if (m > 0) ++m;
  AgentStatus st;
  bool sawPhase = false;
  for (const auto& line : split(text.substr(0, m), '\n')) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "phase") {
      st.phase = value;
      sawPhase = true;
    } else if (key == "rc" && !value.empty()) {
      int rc = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), rc);
      if (ec == std::errc()) st.switchStatus = rc;
    } else if (key == "newgen") {
      st.newGeneration = value;
    } else if (key == "decision") {
      st.decision = value;
    } else if (key == "reason") {
      st.reason = value;
    } else if (key == "detach") {
      st.detach = value;
    } else if (key == "size") {
      size_t n = 0;
      std::from_chars(value.data(), value.data() + value.size(), n);
      st.logSize = n;
    }
  }
  if (!sawPhase) return std::nullopt;
  st.logBytes = text.substr(m + marker.size());
  return st;
}

std::optional<int64_t> parseGenerationLink(const std::string& link) {
  std::string_view s = trim(link);
  auto slash = s.rfind('/');
  if (slash != std::string_view::npos) s = s.substr(slash + 1);
  if (!startsWith(s, "system-") || !endsWith(s, "-link")) return std::nullopt;
  std::string_view num = s.substr(7, s.size() - 7 - 5);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
  if (ec != std::errc() || p != num.data() + num.size() || n <= 0) return std::nullopt;
  return n;
}

}  // namespace runner::deploy
