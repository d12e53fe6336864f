#pragma once
// What the NBD adapter's tests need beside the servers (examples/adapters/nbdkit.hpp): a temporary
// directory removed with its contents, and a shell command's exit status.

#include "../../examples/adapters/nbdkit.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace nbd_tests {

using mpath::adapters::file_exists;
using mpath::adapters::free_port;
using mpath::adapters::nbdkit_server;
using mpath::adapters::server_config;
using mpath::adapters::touch;

/// A fresh directory under /tmp, removed with its contents on destruction.
class temp_dir {
public:
  temp_dir() {
    char tmpl[] = "/tmp/mpath-nbd-XXXXXX";
    if (const char* d = ::mkdtemp(tmpl))
      path_ = d;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    if (!path_.empty())
      std::filesystem::remove_all(path_, ec);
  }
  bool ok() const { return !path_.empty(); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

/// Runs a shell command; true when it exits 0.
inline bool run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

} // namespace nbd_tests
