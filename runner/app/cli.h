// The command line (DESIGN.md §3). `runCli` is the outermost error boundary: every exception
// ends as one "switchyard: error: ..." line on stderr and an exit status.
#pragma once

namespace runner::app {

int runCli(int argc, char** argv);

}  // namespace runner::app
