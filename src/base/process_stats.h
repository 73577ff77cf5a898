// Measured facts about this process: peak and current resident memory.
#pragma once

#include <cstdint>
#include <string>

namespace memwall {

uint64_t peak_rss_bytes();               // VmHWM from /proc/self/status; 0 if unavailable
uint64_t current_rss_bytes();            // VmRSS
// Resets VmHWM to the current RSS (Linux >= 4.0), so a later peak excludes
// work that is not part of what is measured; false if the kernel refused.
bool reset_peak_rss();
std::string format_bytes(double bytes);  // "93.81 MiB"

}  // namespace memwall
