#pragma once
// Shared by the run and sweep config readers: a TOML value's type in words, for error messages,
// and the exact number and string texts of the canonical TOML that config hashes are taken of.
#include <string>
#include <string_view>
#include <toml++/toml.h>

namespace nmech::config {

std::string type_words(const toml::node& n);  // "a table", "an integer", ...
std::string shortest_text(double v);          // shortest text that reads back as the same double
std::string toml_float(double v);             // a TOML float literal, exact ("1.0", not "1")
std::string toml_string(std::string_view s);  // a TOML basic string, escaped

}  // namespace nmech::config
