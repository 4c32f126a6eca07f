#pragma once
// Shared by the run and sweep config readers: a TOML value's type in words, for error messages.
#include <string>
#include <toml++/toml.h>

namespace nmech::config {

std::string type_words(const toml::node& n);  // "a table", "an integer", ...

}  // namespace nmech::config
