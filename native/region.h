// Memory regions a ring lives in: private to one process (anonymous mmap, shared by its worker
// threads) or named POSIX shared memory (shared by processes).
//
// Names: "/ringpipe-u<uid>-p<pid>-s<start>-<n>". uid keeps users apart, pid + the process start
// time (from /proc) identify the owner even after pid reuse, so a later run can tell the segments
// of a SIGKILLed owner from live ones and remove them (cleanup_stale_regions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ringpipe {

struct Region {
  uint8_t* data = nullptr;
  size_t size = 0;
  std::string name;  // empty for a private region
};

// Each throws RegionError on failure, with a code the JS side maps to its error classes.
struct RegionError {
  const char* code;  // "ERR_SHM_FULL", "ERR_REGION_CREATE", "ERR_REGION_OPEN"
  std::string message;
};

Region create_private_region(size_t size);
Region create_shared_region(size_t size);  // registered for unlink at exit
Region open_shared_region(const std::string& name);
void unmap_region(uint8_t* data, size_t size);
bool unlink_region(const std::string& name);  // false if it was already gone
int unlink_owned_regions();                   // the ones this process created and has not unlinked
int cleanup_stale_regions();                  // segments whose owner process is gone
std::string region_prefix();                  // this process's name prefix, without the leading '/'

}  // namespace ringpipe
