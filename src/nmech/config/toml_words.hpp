#pragma once
// Shared by the run and sweep config readers: one-line errors naming file, line and key, a TOML
// value read as a number or an integer, a value's type in words, the keys of a table in file
// order, and the exact number and string texts of the canonical TOML that config hashes are
// taken of.
#include <cstdint>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <utility>
#include <vector>

namespace nmech::config {

// The CLI prints an error as one line and job scripts grep it: control characters from user
// input (a quoted key may hold a newline) are escaped rather than printed.
std::string one_line(std::string_view s);
// Throws ConfigError "<where>: key '<key>': <what>", as one line.
[[noreturn]] void fail(const std::string& where, std::string_view key, const std::string& what);
std::string quoted(std::string_view s);  // 'text'

// Each returns what is wrong ("" when fine). Integers are fine where a float is expected
// ("lr = 1" means 1.0); a whole float is fine where an integer is expected ("steps = 1e3"), 12.5 is
// refused.
std::string read_number(const toml::node& n, double& out);
std::string read_integer(const toml::node& n, std::int64_t& out);

// A table's keys in the order they appear in the file (toml::table iterates sorted), so the first
// error reported is the first one a reader meets.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t);

std::string type_words(const toml::node& n);  // "a table", "an integer", ...
std::string shortest_text(double v);          // shortest text that reads back as the same double
std::string toml_float(double v);             // a TOML float literal, exact ("1.0", not "1")
std::string toml_string(std::string_view s);  // a TOML basic string, escaped

}  // namespace nmech::config
