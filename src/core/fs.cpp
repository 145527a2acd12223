// Implementation of file helpers (see fs.h).
#include "core/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"

namespace stepwise {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open: ", std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) fail(path.string(), ": read error");
  return os.str();
}

static fs::path temp_name_for(const fs::path& path) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return path.parent_path() / (".tmp-" + path.filename().string() + "-" + std::to_string(rng() % 1000000007));
}

void write_file_atomic_with(const fs::path& path, const std::function<void(std::FILE*)>& fill) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  const fs::path tmp = temp_name_for(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(tmp.string(), ": cannot create: ", std::strerror(errno));
  try {
    fill(f);
    if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0) fail(tmp.string(), ": write failed: ", std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  if (std::fclose(f) != 0) fail(tmp.string(), ": close failed: ", std::strerror(errno));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail(path.string(), ": cannot rename temporary file into place: ", ec.message());
  }
  fsync_dir(path.has_parent_path() ? path.parent_path() : fs::path("."));
}

void write_file_atomic(const fs::path& path, std::string_view data) {
  write_file_atomic_with(path, [&](std::FILE* f) {
    if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size())
      fail(path.string(), ": write failed: ", std::strerror(errno));
  });
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string content_hash(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace stepwise
