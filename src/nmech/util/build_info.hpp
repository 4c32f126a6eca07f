#pragma once
// What was built: the git commit at build time (with "-dirty" for uncommitted changes) and the
// project version. Defined in a file generated on every build (cmake/build_info.cmake).
namespace nmech::util {

const char* git_commit();
const char* version();

}  // namespace nmech::util
