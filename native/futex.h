// Futex wait/wake on a uint32 in a shared mapping. Without FUTEX_PRIVATE_FLAG the kernel keys the
// wait on the physical page, so a wake from another process reaches it (Atomics.notify does not).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>

namespace ringpipe {

enum class WaitResult { kWoken = 0, kNotEqual = 1, kTimedOut = 2 };

// Parks while *addr == expected, at most timeout_ms (negative: no limit).
inline WaitResult futex_wait(uint32_t* addr, uint32_t expected, double timeout_ms) {
  timespec ts{}, *tsp = nullptr;
  if (timeout_ms >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ms / 1000);
    ts.tv_nsec = static_cast<long>((timeout_ms - ts.tv_sec * 1000.0) * 1e6);
    tsp = &ts;
  }
  long rc = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, nullptr, 0);
  if (rc == 0) return WaitResult::kWoken;
  if (errno == EAGAIN) return WaitResult::kNotEqual;
  if (errno == ETIMEDOUT) return WaitResult::kTimedOut;
  return WaitResult::kWoken;  // EINTR: let the caller re-check its condition
}

inline int futex_wake(uint32_t* addr, int count = INT_MAX) {
  return static_cast<int>(syscall(SYS_futex, addr, FUTEX_WAKE, count, nullptr, nullptr, 0));
}

}  // namespace ringpipe
