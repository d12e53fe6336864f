// mpathctl's script runner over the simulation backend. The language itself (parsing, printing,
// running a command) is the library's, in mpath/testing/script.hpp; this file picks the device
// type and holds the help text, which documents the contract (product.md §6).

#include "script_runner.hpp"

#include <mpath/testing/script.hpp>

#include <istream>
#include <ostream>

namespace mpathctl {

int run_script(std::istream& in, std::ostream& out) {
  using device = mpath::testing::health_sim_device<>;
  return mpath::testing::run_script<device>(in, out, &mpath::testing::make_health_sim_target<>,
                                            &mpath::testing::make_seed2003_sim_target);
}

extern const std::string_view help_text;
const std::string_view help_text = R"(mpathctl - drive the mpath multipath engine from a script, in simulation

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
  create2003 NAME PARAMS...   create a device from seed 003's (the 2003 dm-multipath's)
                              parameters, six words per path: PATH PRIORITY N|L|M MIN-IOS
                              FAILURE-MAXIMUM REACTIVATION-TIMEOUT. One group per priority,
                              highest first; N stays on a path until it fails, L moves to the
                              next path of its priority every MIN-IOS I/Os, M too but only to a
                              path of no higher weighted latency; a path fails at its
                              FAILURE-MAXIMUM-th path error in a row; REACTIVATION-TIMEOUT
                              seconds after it failed a test read (the path's probe state) is
                              sent, and the path reinstated if it succeeds. table and status
                              print seed 003's formats; policy, prio, log, topology and reload
                              do not apply. Prints nothing, or error: EINVAL: dm-multipath: ...
  remove NAME                 destroy the device; I/O it still holds fails. Prints nothing.
  reload NAME PARAMS...       load a new table into the live device as multipathd does (noflush
                              suspend, swap, resume): held and queued I/O goes to the new table,
                              I/O in flight on the old one completes there and is retried
                              through the new one if it fails with a path error; its paths start
                              active (a running health layer fails again those it knows are
                              down). Prints nothing, or the table's error (the old one stays).
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
  option NAME path_failure_threshold N
                              fail a path only at its Nth path error in a row (default 1)
  option NAME keep_last_path on|off
                              an error on the last valid path fails the I/O, not the path
  policy NAME KEY VALUE...    a health-layer setting, with multipath.conf's name and values
                              (polling_interval, max_polling_interval, failback, no_path_retry,
                              san_path_err_threshold, san_path_err_forget_rate,
                              san_path_err_recovery_time, delay_watch_checks, delay_wait_checks,
                              marginal_pathgroups, path_grouping_policy, checker_timeout). The
                              first accepted policy command starts the health layer (multipathd)
                              for NAME: it ticks every second of virtual time from then on, the
                              first tick 1000 ms later. Prints nothing, or error: EINVAL: ...
  probe NAME PATH up|down|ghost|pending|timeout|shaky
                              what the simulated path checker answers for PATH from now on
                              (default up); for a create2003 device, what its test reads find
  prio NAME PATH N            what the simulated prioritizer answers for PATH (default 1)
  log NAME                    print and clear what the health layer did, in multipathd's words
  topology NAME               print the device as multipath -ll shows it
  echo WORDS...               print WORDS (an mpathctl extension, for readable scenarios)

OUTPUT
  Commands not listed here print nothing.
  table, status   the kernel's text without its trailing blank, e.g.
                  2 0 1 0 2 1 A 0 2 2 8:16 A 0 0 1 8:32 A 0 8192 4 E 0 2 0 8:48 A 0 8:64 A 0
                  and for a create2003 device seed 003's: table 8:16 1 L 2 3 10 8:32 1 N 1 1 0,
                  status 8:16 O 8:32 I(4/0)[1] (O usable; I(seconds since failed/timeout);
                  [failures] when not 0)
  message         ok
  stats           submitted=N ok=N failed=N queued=N inflight=N
                  PATH dispatched=N inflight=N        (one line per path, table order; after
                                                       a reload the new table's, counted from 0)
  topology        NAME
                  features='0' hwhandler='0' wp=rw
                  |-+- policy='round-robin 0' prio=1 status=active
                  | `- 8:16 active ready
  events          PATH_FAILED PATH NR_VALID           (one line per event, oldest first)
                  PATH_REINSTATED PATH NR_VALID
  log             checker failed path PATH in map NAME, PATH: reinstated,
                  NAME: remaining active paths: N, NAME: switch to path group #N,
                  NAME: Entering recovery mode: max_retries=N, NAME: Disable queueing, ...
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

} // namespace mpathctl
