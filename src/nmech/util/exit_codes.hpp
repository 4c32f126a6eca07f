#pragma once
// The exit codes of every nmech command: the one list (README "Exit codes" and docs/FAULTS.md
// quote it; jobs/chain.sh and the tests read these numbers). Header-only, torch-free.
namespace nmech::util {

enum ExitCode : int {
  kComplete = 0,      // everything asked for is done (a sweep: every run done or diverged)
  kFailed = 1,        // an internal error, or a write the system refused (disk full): rerun resumes
  kBadInput = 2,      // a config, data file or store that cannot be used; nothing written
  kStopped = 3,       // stopped by USR1/USR2/TERM with a checkpoint: rerun the same command
  kVerifyFailed = 4,  // nmech verify: a set is not a symmetry of the model
};

}  // namespace nmech::util
