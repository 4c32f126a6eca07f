#pragma once
// A write the system refused (disk full, quota, an I/O error) while saving rows, progress or a
// checkpoint. What was committed before stays valid: the command ends with exit code 1 and one
// line, and the same command resumes once there is room. Header-only, torch-free.
#include <stdexcept>

namespace nmech::util {

class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace nmech::util
