// mpathctl: a dmsetup-like driver for the mpath engine over the simulation backend. It reads a
// script of commands (product.md §6, a contract: keep the language and the output formats exactly
// as they are) and prints what the kernel's dmsetup would print, plus the simulation's counters.

#include "demo.hpp"

#include <mpath/error.hpp>
#include <mpath/hw_handler.hpp>
#include <mpath/io.hpp>
#include <mpath/multipath.hpp>
#include <mpath/testing/sim.hpp>
#include <mpath/version.hpp>

#include <array>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using device = mpath::testing::sim_device<>;
using args_type = std::span<const std::string>;

constexpr std::string_view help_text = R"(mpathctl - drive the mpath multipath engine from a script, in simulation

USAGE
  mpathctl [SCRIPT]        run the commands of SCRIPT; standard input when SCRIPT is missing or "-"
  mpathctl demo [OPTIONS]  live failover demo over real files (see `mpathctl demo --help`)
  mpathctl --help          this text
  mpathctl --version       the library version

SCRIPT LANGUAGE
  One command per line; words are split on blanks. A line whose first word starts with '#' is a
  comment; blank lines are ignored. A script may create several devices; every other command names
  one of them. Each device has the simulation backend behind it (I/O stays in flight until the
  script completes it) and its own virtual clock, which starts at 0 and moves only with `sleep`.
  Deferred work (activation of path groups, dispatch of queued I/O, path events) runs only at
  `run` and `sleep`. In request mode mpathctl plays DM core: an I/O the engine answers "requeue"
  is resubmitted at the next `run`, one answered "requeue after a delay" after 100 ms of virtual
  time or as soon as the engine asks for its requeue list to be re-driven, whichever comes first.

COMMANDS (NAME is a device name, PATH a path token of its table)
  create NAME PARAMS...       create a device from multipath target parameters (what follows
                              `multipath` in a dm table line; a leading `0 <len> multipath` is
                              accepted). The device starts resumed with no I/O. Prints nothing.
  remove NAME                 destroy the device; I/O it still holds fails. Prints nothing.
  table NAME                  print the TABLE status (dmsetup table), kernel format, one line
  status NAME                 print the INFO status (dmsetup status), kernel format, one line
  message NAME WORDS...       send a target message (fail_path 8:16, switch_group 2,
                              queue_if_no_path, ...); prints "ok" or "error: ERRNO: text"
  suspend NAME [noflush]      suspend (presuspend + postsuspend), flushing unless noflush
  resume NAME                 resume; I/O held across the suspend is reissued
  io NAME COUNT [BYTES]       submit COUNT I/Os of BYTES bytes (default 4096), in order; I/O ids
                              count from 1 per device
  complete NAME PATH|all COUNT|all [STATUS]
                              complete the oldest COUNT in-flight I/Os on PATH (or on any path)
                              with STATUS: ok (default); path errors ioerr timeout transport
                              offline resource again; non-path errors notsupp nospc target
                              resv_conflict medium protection
  fault NAME PATH on|off      while on, every I/O dispatched to PATH completes at once with
                              transport
  hwh NAME RESULT...          queue results for the simulated hardware handler (any handler name
                              in the table selects it), used by the next activations in order:
                              ok dev_failed dev_temp_busy retry imm_retry res_temp_unavail
                              offlined nosys timed_out; an activation with none queued answers ok
  run NAME                    run deferred work until nothing moves; the clock does not move
  sleep NAME MS               advance the virtual clock by MS milliseconds, firing due timers,
                              then run
  stats NAME                  print the I/O counters, then one line per path in table order
  events NAME                 print and clear the path events seen so far
  option NAME queue_if_no_path_timeout_secs SECS
                              the no-path timeout of the device (0 = off, the default)
  echo WORDS...               print WORDS (an mpathctl extension, for readable scenarios)

OUTPUT
  Commands not listed here print nothing.
  table, status   the kernel's text without its trailing blank, e.g.
                  2 0 1 0 2 1 A 0 2 2 8:16 A 0 0 1 8:32 A 0 8192 4 E 0 2 0 8:48 A 0 8:64 A 0
  message         ok
  stats           submitted=N ok=N failed=N queued=N inflight=N
                  PATH dispatched=N inflight=N        (one line per path, table order)
  events          PATH_FAILED PATH NR_VALID           (one line per event, oldest first)
                  PATH_REINSTATED PATH NR_VALID
  A command the engine refuses (a bad table, a bad message, ...) prints one line
      error: ERRNO: text                e.g. error: EINVAL: invalid number of priority groups
  and the script goes on. An unknown command, a wrong number of arguments, a bad number or an
  unknown device or path prints one line
      usage: line N: ...
  and the script goes on too.

EXIT STATUS
  0  every command was understood (engine errors included)
  1  the script could not be read
  2  a command line or script line was not understood (a `usage:` line was printed)
  (`mpathctl demo` has its own exit statuses, see `mpathctl demo --help`)
)";

// ------------------------------------------------------------------------------------- words

std::vector<std::string> split_blanks(std::string_view line) {
  std::vector<std::string> words;
  std::size_t i = 0;
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  while (i < line.size()) {
    while (i < line.size() && blank(line[i]))
      ++i;
    std::size_t start = i;
    while (i < line.size() && !blank(line[i]))
      ++i;
    if (i > start)
      words.emplace_back(line.substr(start, i - start));
  }
  return words;
}

std::string join(args_type words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty())
      out += ' ';
    out += w;
  }
  return out;
}

/// Exactly one unsigned decimal number filling the word, at most `max`.
std::optional<std::uint64_t> parse_number(std::string_view word, std::uint64_t max) {
  if (word.empty())
    return std::nullopt;
  for (char c : word)
    if (c < '0' || c > '9')
      return std::nullopt;
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
  if (ec != std::errc{} || ptr != word.data() + word.size() || v > max)
    return std::nullopt;
  return v;
}

std::string_view strip_trailing_blank(std::string_view s) {
  while (!s.empty() && s.back() == ' ')
    s.remove_suffix(1);
  return s;
}

// ------------------------------------------------------------------------------------- names

constexpr std::array<mpath::blk_status, 17> error_statuses{mpath::blk_status::ioerr,
                                                           mpath::blk_status::timeout,
                                                           mpath::blk_status::transport,
                                                           mpath::blk_status::offline,
                                                           mpath::blk_status::resource,
                                                           mpath::blk_status::again,
                                                           mpath::blk_status::notsupp,
                                                           mpath::blk_status::nospc,
                                                           mpath::blk_status::target,
                                                           mpath::blk_status::resv_conflict,
                                                           mpath::blk_status::medium,
                                                           mpath::blk_status::protection,
                                                           mpath::blk_status::dev_resource,
                                                           mpath::blk_status::zone_open_resource,
                                                           mpath::blk_status::zone_active_resource,
                                                           mpath::blk_status::duration_limit,
                                                           mpath::blk_status::inval};

std::optional<mpath::blk_status> parse_status(std::string_view word) {
  if (word == "ok")
    return mpath::blk_status::ok;
  for (auto s : error_statuses)
    if (word == mpath::to_string(s))
      return s;
  return std::nullopt;
}

struct activation_name {
  std::string_view name;
  mpath::activation_result result;
};

constexpr std::array<activation_name, 16> activation_names{{
    {"ok", mpath::activation_result::ok},
    {"dev_failed", mpath::activation_result::dev_failed},
    {"dev_temp_busy", mpath::activation_result::dev_temp_busy},
    {"retry", mpath::activation_result::retry},
    {"imm_retry", mpath::activation_result::imm_retry},
    {"res_temp_unavail", mpath::activation_result::res_temp_unavail},
    {"offlined", mpath::activation_result::dev_offlined},
    {"nosys", mpath::activation_result::nosys},
    {"timed_out", mpath::activation_result::timed_out},
    // Beyond the contract: the remaining SCSI_DH_* codes, and the kernel's spelling of offlined.
    {"dev_offlined", mpath::activation_result::dev_offlined},
    {"dev_unsupp", mpath::activation_result::dev_unsupp},
    {"notconn", mpath::activation_result::notconn},
    {"conn_failure", mpath::activation_result::conn_failure},
    {"io", mpath::activation_result::io},
    {"invalid_io", mpath::activation_result::invalid_io},
    {"nomem", mpath::activation_result::nomem},
}};

std::optional<mpath::activation_result> parse_activation(std::string_view word) {
  for (const auto& a : activation_names)
    if (word == a.name)
      return a.result;
  return std::nullopt;
}

// ------------------------------------------------------------------------------------- interpreter

class interpreter {
public:
  explicit interpreter(std::ostream& out) : out_(out) {}

  /// Runs one script line.
  void line(std::string_view text, std::size_t number) {
    line_ = number;
    auto words = split_blanks(text);
    if (words.empty() || words.front().front() == '#')
      return;
    const command* cmd = find(words.front());
    if (!cmd) {
      usage("unknown command '" + words.front() + "' (mpathctl --help lists the commands)");
      return;
    }
    args_type args = args_type(words).subspan(1);
    if (args.size() < cmd->min_args || args.size() > cmd->max_args) {
      usage(std::string(cmd->synopsis));
      return;
    }
    cmd_ = cmd;
    device* d = nullptr;
    if (cmd->needs_device) {
      auto it = devices_.find(args[0]);
      if (it == devices_.end()) {
        usage("no device named '" + args[0] + "' (create it first)");
        return;
      }
      d = it->second.get();
    }
    (this->*(cmd->run))(d, args);
  }

  bool usage_seen() const noexcept { return usage_seen_; }

private:
  using handler = void (interpreter::*)(device*, args_type);
  struct command {
    std::string_view name;
    std::string_view synopsis;
    std::size_t min_args; ///< counting NAME
    std::size_t max_args;
    bool needs_device;
    handler run;
  };
  static constexpr std::size_t many = std::numeric_limits<std::size_t>::max();

  static const command* find(std::string_view name) {
    static const command commands[] = {
        {"create", "create NAME PARAMS...", 2, many, false, &interpreter::create},
        {"remove", "remove NAME", 1, 1, true, &interpreter::remove},
        {"table", "table NAME", 1, 1, true, &interpreter::table},
        {"status", "status NAME", 1, 1, true, &interpreter::status},
        {"message", "message NAME WORDS...", 2, many, true, &interpreter::message},
        {"suspend", "suspend NAME [noflush]", 1, 2, true, &interpreter::suspend},
        {"resume", "resume NAME", 1, 1, true, &interpreter::resume},
        {"io", "io NAME COUNT [BYTES]", 2, 3, true, &interpreter::io},
        {"complete", "complete NAME PATH|all COUNT|all [STATUS]", 3, 4, true, &interpreter::complete},
        {"fault", "fault NAME PATH on|off", 3, 3, true, &interpreter::fault},
        {"hwh", "hwh NAME RESULT...", 2, many, true, &interpreter::hwh},
        {"run", "run NAME", 1, 1, true, &interpreter::run},
        {"sleep", "sleep NAME MS", 2, 2, true, &interpreter::sleep},
        {"stats", "stats NAME", 1, 1, true, &interpreter::stats},
        {"events", "events NAME", 1, 1, true, &interpreter::events},
        {"option", "option NAME queue_if_no_path_timeout_secs SECS", 3, 3, true, &interpreter::option},
        {"echo", "echo WORDS...", 0, many, false, &interpreter::echo},
    };
    for (const auto& c : commands)
      if (c.name == name)
        return &c;
    return nullptr;
  }

  void usage(const std::string& text) {
    out_ << "usage: line " << line_ << ": " << text << '\n';
    usage_seen_ = true;
  }
  /// Bad usage of the current command: what was wrong, then its synopsis.
  void bad(const std::string& what) { usage(what + " (" + std::string(cmd_->synopsis) + ")"); }

  void engine_error(const mpath::error& e) { out_ << "error: " << mpath::errno_name(e.code) << ": " << e.text << '\n'; }

  static bool has_path(device& d, std::string_view path) {
    for (const auto& p : d.backend().paths())
      if (p.device == path)
        return true;
    return false;
  }

  // ---- commands

  void create(device*, args_type args) {
    if (devices_.count(args[0])) {
      bad("device '" + args[0] + "' already exists");
      return;
    }
    auto made = device::create(join(args.subspan(1)));
    if (!made) {
      engine_error(made.err());
      return;
    }
    devices_.emplace(args[0], std::move(*made));
  }

  void remove(device*, args_type args) { devices_.erase(args[0]); }

  void table(device* d, args_type) {
    out_ << strip_trailing_blank(d->engine().status(mpath::status_type::table)) << '\n';
  }

  void status(device* d, args_type) {
    out_ << strip_trailing_blank(d->engine().status(mpath::status_type::info)) << '\n';
  }

  void message(device* d, args_type args) {
    if (auto r = d->engine().message(args.subspan(1)); !r)
      engine_error(r.err());
    else
      out_ << "ok\n";
  }

  void suspend(device* d, args_type args) {
    if (args.size() == 2 && args[1] != "noflush") {
      bad("'" + args[1] + "' is not noflush");
      return;
    }
    d->suspend(args.size() == 2);
  }

  void resume(device* d, args_type) { d->resume(); }

  void io(device* d, args_type args) {
    auto count = parse_number(args[1], max_io_count);
    if (!count) {
      bad("COUNT must be a number from 0 to " + std::to_string(max_io_count));
      return;
    }
    std::uint64_t bytes = 4096;
    if (args.size() == 3) {
      auto b = parse_number(args[2], std::numeric_limits<std::uint32_t>::max());
      if (!b) {
        bad("BYTES must be a number from 0 to 4294967295");
        return;
      }
      bytes = *b;
    }
    d->io(std::size_t(*count), bytes);
  }

  void complete(device* d, args_type args) {
    std::string_view path = args[1] == "all" ? std::string_view() : std::string_view(args[1]);
    if (!path.empty() && !has_path(*d, path)) {
      bad("'" + args[1] + "' is not a path of " + args[0]);
      return;
    }
    std::size_t count = std::numeric_limits<std::size_t>::max();
    if (args[2] != "all") {
      auto n = parse_number(args[2], std::numeric_limits<std::uint32_t>::max());
      if (!n) {
        bad("COUNT must be a number or all");
        return;
      }
      count = std::size_t(*n);
    }
    auto status = mpath::blk_status::ok;
    if (args.size() == 4) {
      auto s = parse_status(args[3]);
      if (!s) {
        bad("unknown STATUS '" + args[3] + "'");
        return;
      }
      status = *s;
    }
    d->complete(path, count, status);
  }

  void fault(device* d, args_type args) {
    if (args[2] != "on" && args[2] != "off") {
      bad("'" + args[2] + "' is not on or off");
      return;
    }
    if (!d->backend().set_fault(args[1], args[2] == "on"))
      bad("'" + args[1] + "' is not a path of " + args[0]);
  }

  void hwh(device* d, args_type args) {
    std::vector<mpath::activation_result> results;
    for (const auto& word : args.subspan(1)) {
      auto r = parse_activation(word);
      if (!r) {
        bad("unknown RESULT '" + word + "'");
        return;
      }
      results.push_back(*r);
    }
    auto* h = d->handler();
    if (!h) {
      bad("device '" + args[0] + "' has no hardware handler");
      return;
    }
    for (auto r : results)
      h->push(r);
  }

  void run(device* d, args_type) { d->run(); }

  void sleep(device* d, args_type args) {
    auto ms = parse_number(args[1], std::numeric_limits<std::uint32_t>::max());
    if (!ms) {
      bad("MS must be a number from 0 to 4294967295");
      return;
    }
    d->sleep(*ms);
  }

  void stats(device* d, args_type) {
    auto s = d->stats();
    out_ << "submitted=" << s.submitted << " ok=" << s.ok << " failed=" << s.failed << " queued=" << s.queued
         << " inflight=" << s.inflight << '\n';
    for (const auto& p : d->backend().paths())
      out_ << p.device << " dispatched=" << p.dispatched << " inflight=" << p.in_flight << '\n';
  }

  void events(device* d, args_type) {
    for (const auto& e : d->take_events())
      out_ << e << '\n';
  }

  void option(device* d, args_type args) {
    if (args[1] != "queue_if_no_path_timeout_secs") {
      bad("unknown option '" + args[1] + "'");
      return;
    }
    auto secs = parse_number(args[2], std::numeric_limits<std::uint32_t>::max());
    if (!secs) {
      bad("SECS must be a number from 0 to 4294967295");
      return;
    }
    d->engine().set_queue_if_no_path_timeout(std::uint32_t(*secs));
  }

  void echo(device*, args_type args) { out_ << join(args) << '\n'; }

  static constexpr std::uint64_t max_io_count = 1'000'000;

  std::ostream& out_;
  std::map<std::string, std::unique_ptr<device>, std::less<>> devices_;
  std::size_t line_ = 0;
  const command* cmd_ = nullptr;
  bool usage_seen_ = false;
};

int run_script(std::istream& in) {
  interpreter interp(std::cout);
  std::string text;
  for (std::size_t number = 1; std::getline(in, text); ++number)
    interp.line(text, number);
  std::cout.flush();
  return interp.usage_seen() ? 2 : 0;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << help_text;
    return 0;
  }
  if (!args.empty() && args[0] == "--version") {
    std::cout << "mpathctl (mpath " << MPATH_VERSION_MAJOR << '.' << MPATH_VERSION_MINOR << '.' << MPATH_VERSION_PATCH
              << ")\n";
    return 0;
  }
  if (!args.empty() && args[0] == "demo")
    return mpathctl::run_demo(argc - 1, argv + 1);
  if (args.size() > 1 || (!args.empty() && args[0].size() > 1 && args[0].front() == '-')) {
    std::cerr << "usage: mpathctl [SCRIPT] | mpathctl demo [OPTIONS] | mpathctl --help\n";
    return 2;
  }
  if (args.empty() || args[0] == "-")
    return run_script(std::cin);
  std::ifstream file{std::string(args[0])};
  if (!file) {
    std::cerr << "mpathctl: cannot read " << args[0] << '\n';
    return 1;
  }
  return run_script(file);
}
