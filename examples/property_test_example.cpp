// Property-testing your own table with the model the library is tested with:
//
//   "with this table, no I/O fails while any path is up"
//
// rapidcheck generates random scripts (I/O, completions with path errors, faults, messages, handler
// results, time, suspend/resume) for the table, runs each on the simulated engine and on the
// reference model (mpath/testing/property.hpp checks that they agree after every step), and asks
// our property after every step. A failure prints the shrunk script; replay it with `mpathctl`.
//
//   property_test_example                    100 random scripts
//   RC_PARAMS="max_success=2000" property_test_example

#include <mpath/testing/property.hpp>

#include <rapidcheck.h>

#include <string>

namespace mt = mpath::testing;

int main() {
  // The table a product would load: two paths behind an ALUA handler, a standby group, no
  // queue_if_no_path (so I/O *can* fail: when every path is down).
  const std::string table = "0 1 alua 2 1 round-robin 0 2 1 sda 1 sdb 1 queue-length 0 1 1 sdc 1";

  mt::model_check<> check;
  // Only path trouble: a completion with a non-path error (a medium error, ...) fails its I/O on
  // purpose, whatever the paths, so such completions succeed here instead.
  check.steps = [](const mt::reference_model& m) {
    return rc::gen::map(mt::gen_step(m), [](mt::script_step s) {
      if (s.what == mt::script_step::kind::complete && !mpath::is_path_error(s.status))
        s.status = mpath::blk_status::ok;
      return s;
    });
  };
  // The property. Paths only come back through `reinstate_path`, which fails no I/O, so a path that
  // is up after a step was up during all of it: an I/O that failed in this step failed while that
  // path was up.
  check.after_step = [](const mt::script_step&, const mt::reference_model& before, const mt::reference_model& after,
                        mt::sim_device<>& device) {
    bool failed_now = device.stats().failed > before.stats().failed;
    RC_ASSERT(after.stats().failed == device.stats().failed);
    if (failed_now)
      RC_ASSERT(device.engine().nr_valid_paths() == 0u);
  };

  bool ok = rc::check("with this table, no I/O fails while any path is up",
                      [&] { mt::check_against_model(mt::fixed_table(table), check); });
  return ok ? 0 : 1;
}
