#pragma once
// nbdkit servers for the NBD adapter (nbd.hpp): one process per "controller" (the file plugin,
// optionally behind the error and delay filters, on 127.0.0.1, a Unix socket or inside a network
// namespace), started in the foreground with --exit-with-parent, in a process group of its own (a
// Ctrl-C at the terminal reaches only its owner, which stops it), and stopped (SIGTERM, waitpid) by
// its destructor. Used by the NBD tests, `mpathctl demo --backend nbd` and bench/nbd_selectors.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace mpath::adapters {

inline bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}
/// Creates `p` if it does not exist (how a path's errors are switched on through the error filter).
inline void touch(const std::string& p) {
  int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0)
    ::close(fd);
}

/// A TCP port nothing listens on right now: bind port 0 on 127.0.0.1 and read back what the kernel
/// chose (nbdkit has no --port=0). Another process could take it before nbdkit binds it; unlikely.
inline int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

struct server_config {
  std::string file{};           ///< served by the file plugin
  std::string ip = "127.0.0.1"; ///< TCP address, unless unix_socket is set
  int port = 0;                 ///< 0: pick a free one
  std::string unix_socket{};    ///< serve on this Unix socket instead of TCP
  std::string error_file{};     ///< error filter: fail every request while this file exists
  std::string error = "EIO";    ///< ... with this errno
  std::string delay{};          ///< delay filter parameters, e.g. "rdelay=1" or "rdelay=1 wdelay=1"
  std::string netns{};          ///< run inside `ip netns exec NETNS`
  std::string log{};            ///< nbdkit's stderr (default: /dev/null)
};

/// One nbdkit process. `start` (or `spawn` + `ready`) launches it; the destructor stops it.
class nbdkit_server {
public:
  explicit nbdkit_server(server_config c) : c_(std::move(c)) {
    if (c_.port == 0 && c_.unix_socket.empty())
      c_.port = free_port();
  }
  nbdkit_server(const nbdkit_server&) = delete;
  nbdkit_server& operator=(const nbdkit_server&) = delete;
  ~nbdkit_server() { stop(); }

  server_config& config() { return c_; }
  /// The path token for nbd_backend::open_path.
  std::string token() const { return c_.unix_socket.empty() ? c_.ip + ":" + std::to_string(c_.port) : c_.unix_socket; }
  pid_t pid() const { return pid_; }

  /// Launches nbdkit without waiting for it.
  bool spawn() {
    stop();
    pidfile_ = (c_.unix_socket.empty() ? c_.file + ".pid" + std::to_string(c_.port) : c_.unix_socket + ".pid");
    ::unlink(pidfile_.c_str());
    std::vector<std::string> args;
    if (!c_.netns.empty())
      args = {"ip", "netns", "exec", c_.netns};
    for (const char* a : {"nbdkit", "-f", "--exit-with-parent", "-P"})
      args.emplace_back(a);
    args.push_back(pidfile_);
    if (c_.unix_socket.empty()) {
      args.insert(args.end(), {"-i", c_.ip, "-p", std::to_string(c_.port)});
    } else {
      args.insert(args.end(), {"-U", c_.unix_socket});
    }
    if (!c_.error_file.empty())
      args.emplace_back("--filter=error");
    if (!c_.delay.empty())
      args.emplace_back("--filter=delay");
    args.insert(args.end(), {"file", c_.file});
    if (!c_.error_file.empty())
      args.insert(args.end(), {"error-file=" + c_.error_file, "error=" + c_.error, "error-rate=100%"});
    for (std::size_t at = 0; at < c_.delay.size();) {
      auto sp = c_.delay.find(' ', at);
      if (sp == std::string::npos)
        sp = c_.delay.size();
      if (sp > at)
        args.push_back(c_.delay.substr(at, sp - at));
      at = sp + 1;
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, c_.log.empty() ? "/dev/null" : c_.log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_t attr; // a process group of its own: the terminal's Ctrl-C is for the owner
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int rc = ::posix_spawnp(&pid_, argv[0], &fa, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
      pid_ = -1;
    return rc == 0;
  }
  /// Whether it listens (nbdkit writes its pid file once it does).
  bool ready() const {
    if (pid_ <= 0)
      return false;
    std::FILE* f = std::fopen(pidfile_.c_str(), "r");
    if (!f)
      return false;
    long v = 0;
    bool ok = std::fscanf(f, "%ld", &v) == 1 && v > 0;
    std::fclose(f);
    return ok;
  }
  /// Launches nbdkit and waits (up to 5 s) until it listens.
  bool start() {
    if (!spawn())
      return false;
    for (int i = 0; i < 500; ++i) {
      if (ready())
        return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  /// Sends `sig` (SIGTERM: a clean stop; SIGKILL: a crash) and reaps the process (SIGKILL after 1 s).
  void stop(int sig = SIGTERM) {
    if (pid_ <= 0)
      return;
    ::kill(pid_, sig);
    // nbdkit's clean stop waits for its clients to go; a test does not wait more than a second.
    for (int i = 0; i < 100 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i) {
      if (i == 99) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    ::unlink(pidfile_.c_str());
  }

private:
  server_config c_;
  std::string pidfile_;
  pid_t pid_ = -1;
};

} // namespace mpath::adapters
