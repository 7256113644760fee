// The switchyard executable: parses the command line and maps errors to exit codes
// (0 ok, 1 operation failed, 2 bad usage or bad input), with one line on stderr.
#include "runner/app/cli.h"

int main(int argc, char** argv) { return runner::app::runCli(argc, argv); }
