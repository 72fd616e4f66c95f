// The C++ tests' harness: CHECK fails the running test with a message; run() times a test and
// counts it; summary() prints the totals and gives main's exit code.
#pragma once

#include <chrono>
#include <cstdio>

namespace ringpipe::check {

inline int failures = 0, passed = 0, failed = 0;

inline void run(const char* name, void (*fn)()) {
  int before = failures;
  auto t0 = std::chrono::steady_clock::now();
  fn();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s %s (%.0f ms)\n", failures == before ? "ok  " : "FAIL", name, ms);
  if (failures == before) ++passed;
  else ++failed;
}

inline int summary(const char* suite) {
  std::printf("%s: %d passed, %d failed\n", suite, passed, failed);
  return failures ? 1 : 0;
}

}  // namespace ringpipe::check

#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "  FAIL %s:%d: %s ", __FILE__, __LINE__, #cond);              \
      std::fprintf(stderr, __VA_ARGS__);                                                  \
      std::fprintf(stderr, "\n");                                                         \
      ++ringpipe::check::failures;                                                        \
      return;                                                                             \
    }                                                                                     \
  } while (0)
