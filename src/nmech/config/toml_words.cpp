#include "nmech/config/toml_words.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "nmech/config/run_config.hpp"

namespace nmech::config {

std::string one_line(std::string_view s) {
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

void fail(const std::string& where, std::string_view key, const std::string& what) {
  throw ConfigError(one_line(where + ": key '" + std::string(key) + "': " + what));
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string read_number(const toml::node& n, double& out) {
  if (auto i = n.as_integer()) {
    out = static_cast<double>(i->get());
  } else if (auto f = n.as_floating_point()) {
    out = f->get();
  } else {
    return "expected a number, got " + type_words(n);
  }
  return std::isfinite(out) ? "" : "must be a finite number";
}

std::string read_integer(const toml::node& n, std::int64_t& out) {
  if (auto i = n.as_integer()) {
    out = i->get();
    return "";
  }
  auto f = n.as_floating_point();
  if (!f) return "expected an integer, got " + type_words(n);
  double v = f->get();
  if (!std::isfinite(v) || v != std::trunc(v)) return "expected an integer, got " + toml_float(v);
  if (v < -9.223372036854775808e18 || v >= 9.223372036854775808e18) return "is out of range";
  out = static_cast<std::int64_t>(v);
  return "";
}

std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> e;
  for (auto&& [k, n] : t) e.emplace_back(&k, &n);
  std::sort(e.begin(), e.end(), [](const auto& x, const auto& y) {
    const auto& a = x.first->source().begin;
    const auto& b = y.first->source().begin;
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  return e;
}

// Shortest text that reads back as the same double (std::to_chars is locale-free and exact).
std::string shortest_text(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// A TOML float literal: exact, and always recognisably a float ("1" would read back as an integer).
std::string toml_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = shortest_text(v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string type_words(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

}  // namespace nmech::config
