#pragma once
// The wall clock as the store records it: ISO-8601 UTC text (created_utc, started_utc) and
// seconds since the epoch (heartbeat_utc).
#include <string>

namespace nmech::util {

std::string utc_now_text();  // "2026-11-29T14:43:49Z"
double utc_now_seconds();

}  // namespace nmech::util
