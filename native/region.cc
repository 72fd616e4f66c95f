#include "region.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

namespace ringpipe {
namespace {

std::mutex owned_mutex;
std::set<std::string>* owned = new std::set<std::string>();  // leaked on purpose: used from atexit
std::atomic<uint64_t> counter{0};

// Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. "" if the process is gone.
std::string start_time(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = s.rfind(')');  // comm may contain spaces; fields resume after its ')'
  if (p == std::string::npos) return "";
  std::istringstream rest(s.substr(p + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

std::string err(const char* what, const std::string& name) {
  return std::string(what) + " '" + name + "': " + std::strerror(errno);
}

void unlink_at_exit() { unlink_owned_regions(); }

}  // namespace

std::string region_prefix() {
  static const std::string prefix = "ringpipe-u" + std::to_string(getuid()) + "-p" + std::to_string(getpid()) + "-s" +
                                    start_time(getpid());
  return prefix;
}

Region create_private_region(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw RegionError{"ERR_REGION_CREATE", err("cannot map a private region of", std::to_string(size) + " bytes")};
  return Region{static_cast<uint8_t*>(p), size, ""};
}

Region create_shared_region(size_t size) {
  static std::once_flag registered;
  std::call_once(registered, [] { std::atexit(unlink_at_exit); });
  std::string name = "/";
  name += region_prefix();
  name += "-" + std::to_string(counter.fetch_add(1));
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) throw RegionError{"ERR_REGION_CREATE", err("cannot create shared memory", name)};
  {
    std::lock_guard<std::mutex> lock(owned_mutex);
    owned->insert(name);
  }
  // ftruncate alone would let a full /dev/shm surface later as SIGBUS on first touch; allocating
  // now turns it into an error here.
  int rc = ftruncate(fd, static_cast<off_t>(size));
  if (rc == 0) rc = posix_fallocate(fd, 0, static_cast<off_t>(size));
  else rc = errno;
  if (rc != 0) {
    close(fd);
    unlink_region(name);
    errno = rc;
    const char* code = (rc == ENOSPC || rc == ENOMEM) ? "ERR_SHM_FULL" : "ERR_REGION_CREATE";
    throw RegionError{code, err(("cannot allocate " + std::to_string(size) + " bytes of shared memory for").c_str(), name) +
                                (rc == ENOSPC ? " (is /dev/shm full? `df -h /dev/shm`)" : "")};
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    unlink_region(name);
    throw RegionError{"ERR_REGION_CREATE", err("cannot map shared memory", name)};
  }
  return Region{static_cast<uint8_t*>(p), size, name};
}

Region open_shared_region(const std::string& name) {
  int fd = shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) throw RegionError{"ERR_REGION_OPEN", err("cannot open shared memory", name)};
  struct stat st{};
  if (fstat(fd, &st) != 0) {
    close(fd);
    throw RegionError{"ERR_REGION_OPEN", err("cannot stat shared memory", name)};
  }
  void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) throw RegionError{"ERR_REGION_OPEN", err("cannot map shared memory", name)};
  return Region{static_cast<uint8_t*>(p), static_cast<size_t>(st.st_size), name};
}

void unmap_region(uint8_t* data, size_t size) { munmap(data, size); }

bool unlink_region(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(owned_mutex);
    owned->erase(name);
  }
  return shm_unlink(name.c_str()) == 0;
}

int unlink_owned_regions() {
  std::set<std::string> names;
  {
    std::lock_guard<std::mutex> lock(owned_mutex);
    names.swap(*owned);
  }
  int n = 0;
  for (const auto& name : names) n += shm_unlink(name.c_str()) == 0;
  return n;
}

int cleanup_stale_regions() {
  DIR* dir = opendir("/dev/shm");
  if (!dir) return 0;
  const std::string mine = "ringpipe-u" + std::to_string(getuid()) + "-p";
  int removed = 0;
  while (dirent* e = readdir(dir)) {
    std::string n = e->d_name;
    if (n.compare(0, mine.size(), mine) != 0) continue;
    long pid = 0;
    char start[32] = {0};
    if (std::sscanf(n.c_str() + mine.size(), "%ld-s%31[0-9]", &pid, start) != 2) continue;
    if (pid == getpid()) continue;
    bool alive = (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) && start_time(pid) == start;
    if (!alive) removed += shm_unlink(("/" + n).c_str()) == 0;
  }
  closedir(dir);
  return removed;
}

}  // namespace ringpipe
