// File helpers every reader and writer uses: whole-file reads with clear errors, and atomic writes
// (temporary name in the same directory, fsync, rename) so a crash never leaves a half-written file.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace stepwise {

namespace fs = std::filesystem;

// Reads a whole file; throws Error("<path>: cannot open: <reason>") on failure.
std::string read_file(const fs::path& path);

// Writes `data` to `path` atomically.
void write_file_atomic(const fs::path& path, std::string_view data);

// Streams into a temporary file beside `path`, fsyncs and renames it over `path` when `fill` returns normally;
// removes the temporary file if `fill` throws. `fill` receives an open FILE* in binary mode.
void write_file_atomic_with(const fs::path& path, const std::function<void(std::FILE*)>& fill);

// fsync a directory (after renames inside it) so the rename itself is durable.
void fsync_dir(const fs::path& dir);

// Hex-encoded 64-bit FNV-1a hash of bytes; used to key caches (token shards) by content.
std::string content_hash(std::string_view bytes);

}  // namespace stepwise
