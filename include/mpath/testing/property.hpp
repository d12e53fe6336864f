#pragma once
// The model-based property test as a reusable harness (rapidcheck's `rc::state`): a simulated
// device (the system under test, exactly what `mpathctl` drives) and the reference model run the
// same random script; after every step the harness asserts
//
//   * the step printed the same lines (`message` answers, `events`);
//   * TABLE, INFO and `stats` equal the model's, and so does the engine's table-event counter;
//   * every I/O completed at most once, and exactly as often and with the status the model says;
//   * no I/O was dispatched to a path that was failed when the step began (paths come back only
//     through `reinstate_path`, which dispatches nothing itself);
//   * an I/O failed with a path error only when no path was valid, queueing was off and no
//     noflush suspend was in progress;
//   * whatever the caller adds through `model_check::after_step`.
//
// A failure reports the shrunk counterexample as an `mpathctl` script that replays it.
//
//   MP_RC_CHECK("my table", [] {
//     mpath::testing::check_against_model(mpath::testing::fixed_table("1 queue_if_no_path 0 1 1 ..."));
//   });

#if __has_include(<rapidcheck.h>)

#include <mpath/table.hpp>
#include <mpath/testing/generators.hpp>
#include <mpath/testing/model.hpp>
#include <mpath/testing/script.hpp>
#include <mpath/testing/sim.hpp>

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace mpath::inline v0::testing {

/// The system under test of one model run: a simulated device and the script that got it here.
template <class Traits = sim_traits> struct model_sut {
  std::unique_ptr<sim_device<Traits>> device;
  std::string name = "mp";
  std::vector<std::string> script;

  /// The script so far, plus the commands that print the final state.
  std::string replay() const {
    std::string out;
    for (const auto& l : script)
      out += l + "\n";
    for (const char* c : {"table ", "status ", "stats ", "events "})
      out += c + name + "\n";
    return out;
  }
};

/// What a model run checks besides the model's own predictions.
template <class Traits = sim_traits> struct model_check {
  /// The steps to draw from, given the model's state.
  std::function<rc::Gen<script_step>(const reference_model&)> steps = [](const reference_model& m) {
    return gen_step(m, {.engine_options = true, .reload = true});
  };
  /// Called after every step with the model's state before and after it and the device (after it);
  /// state your own property with RC_ASSERT.
  std::function<void(const script_step&, const reference_model& before, const reference_model& after,
                     sim_device<Traits>&)>
      after_step;
  /// Print how often each situation (all paths down, pg_init retried, ...) was reached.
  bool classify = false;
  /// Submit every I/O through one engine channel (`multipath::channel`) instead of without one.
  bool through_channel = false;
};

namespace detail {

inline std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines)
    out += "    " + l + "\n";
  return out.empty() ? "    (nothing)\n" : out;
}

} // namespace detail

template <class Traits> class model_step_command : public rc::state::Command<reference_model, model_sut<Traits>> {
public:
  model_step_command(script_step step, std::shared_ptr<const model_check<Traits>> check)
      : step_(std::move(step)), check_(std::move(check)) {}

  void apply(reference_model& m) const override { (void)run_step(m, step_); }

  void run(const reference_model& before, model_sut<Traits>& sut) const override {
    auto& d = *sut.device;
    reference_model after = before;
    auto expected = run_step(after, step_);

    std::vector<std::uint64_t> dispatched_before;
    for (const auto& p : d.live_paths())
      dispatched_before.push_back(p.dispatched);
    std::vector<bool> failed_before;
    for (auto& g : d.engine().groups())
      for (auto& p : g.paths())
        failed_before.push_back(!p.is_active());

    sut.script.push_back(step_.line(sut.name));
    auto actual = run_step(d, step_);
    if (actual != expected)
      fail(sut, "what the command printed", detail::joined(expected), detail::joined(actual));

    auto want = observe(after), got = observe(d);
    if (want != got)
      fail(sut, "table / status / stats", detail::joined(want), detail::joined(got));
    if (after.event_nr() != d.engine().event_nr())
      fail(sut, "table event counter", std::to_string(after.event_nr()), std::to_string(d.engine().event_nr()));

    auto paths = d.live_paths(); // a reload's new paths are other paths
    for (std::size_t i = 0; step_.what != script_step::kind::reload && i < paths.size(); ++i)
      if (failed_before[i] && paths[i].dispatched != dispatched_before[i])
        fail(sut, "no dispatch to a failed path (product.md §4)",
             paths[i].device + " was failed: dispatched=" + std::to_string(dispatched_before[i]),
             "dispatched=" + std::to_string(paths[i].dispatched));

    const auto& mios = after.ios();
    const auto& sios = d.ios();
    if (mios.size() != sios.size())
      fail(sut, "number of I/Os", std::to_string(mios.size()), std::to_string(sios.size()));
    for (std::size_t i = 0; i < mios.size(); ++i) {
      const auto& m = mios[i];
      const auto& s = sios[i];
      std::string id = "I/O " + std::to_string(m.id) + ": ";
      if (s.completions > 1)
        fail(sut, "exactly-once completion", id + "at most 1 completion", id + std::to_string(s.completions));
      if (s.completions != m.completions || s.dispatches != m.dispatches ||
          (m.completions == 1 && s.final_status != m.status))
        fail(sut, "I/O fate",
             id + "completions=" + std::to_string(m.completions) + " dispatches=" + std::to_string(m.dispatches) +
                 " status=" + std::string(to_string(m.status)),
             id + "completions=" + std::to_string(s.completions) + " dispatches=" + std::to_string(s.dispatches) +
                 " status=" + std::string(to_string(s.final_status)));
      if (m.completions == 1 && m.status != blk_status::ok && is_path_error(m.status) && !m.failed_on_kept_last_path &&
          (m.failed_with_valid_paths || m.failed_while_queueing))
        fail(sut, "an I/O fails only when no path can take it and queueing is off", id + "not failed",
             id + std::string(to_string(m.status)));
    }
    if (after.self_check_failures() != 0)
      fail(sut, "the model dispatched to a failed path", "0", std::to_string(after.self_check_failures()));
    if (check_->after_step) {
      try {
        check_->after_step(step_, before, after, d);
      } catch (const rc::detail::CaseResult& r) {
        if (r.type != rc::detail::CaseResult::Type::Failure)
          throw;
        fail(sut, "your property (model_check::after_step)", "holds", r.description);
      }
    }
  }

  void show(std::ostream& os) const override { os << step_.line("mp"); }

private:
  [[noreturn]] static void fail(const model_sut<Traits>& sut, const std::string& what, const std::string& expected,
                                const std::string& actual) {
    std::ostringstream os;
    os << "after `" << sut.script.back() << "`: " << what << "\n  model:\n"
       << expected << (expected.ends_with('\n') ? "" : "\n") << "  engine:\n"
       << actual << (actual.ends_with('\n') ? "" : "\n")
       << "replay with `mpathctl SCRIPT` (the last four lines print the state):\n"
       << sut.replay();
    RC_FAIL(os.str());
    throw; // unreachable: RC_FAIL throws
  }

  script_step step_;
  std::shared_ptr<const model_check<Traits>> check_;
};

/// A table given as text, for `check_against_model` (the model reads it through the library's
/// grammar; its selectors must be ones the model knows).
inline generated_table fixed_table(std::string_view text) {
  auto t = parse_table(text);
  RC_ASSERT(t.has_value());
  for (const auto& g : t->groups)
    RC_ASSERT(reference_model::supports_selector(g.selector));
  return {std::string(text), model_table::from(*t)};
}

/// One model run (call it inside a rapidcheck property): generates a script for `table`, runs it
/// on a fresh simulated device and on the model, and checks everything listed at the top.
template <class Traits = sim_traits>
void check_against_model(const generated_table& table, model_check<Traits> check = {}) {
  auto made = sim_device<Traits>::create(table.text);
  if (!made)
    RC_FAIL("the engine refused the table `" + table.text + "`: " + made.err().text);
  model_sut<Traits> sut;
  sut.device = std::move(*made);
  if (check.through_channel)
    sut.device->use_channel();
  sut.script.push_back("create " + sut.name + " " + table.text);
  auto shared = std::make_shared<const model_check<Traits>>(std::move(check));
  using command = rc::state::Command<reference_model, model_sut<Traits>>;
  reference_model initial(table.model);
  auto commands = *rc::gen::scale(2.0, rc::state::gen::commands(initial, [shared](const reference_model& m) {
                                    return rc::gen::map(
                                        shared->steps(m), [shared](script_step s) -> std::shared_ptr<const command> {
                                          return std::make_shared<model_step_command<Traits>>(std::move(s), shared);
                                        });
                                  }));
  rc::state::runAll(commands, initial, sut);
  if (shared->classify) {
    reference_model final_state = initial;
    for (const auto& c : commands)
      c->apply(final_state);
    using ms = reference_model::milestone;
    RC_CLASSIFY(final_state.reached(ms::all_paths_down), "all paths down");
    RC_CLASSIFY(final_state.reached(ms::queued_without_path), "I/O queued with no path");
    RC_CLASSIFY(final_state.reached(ms::io_failed), "an I/O failed");
    RC_CLASSIFY(final_state.reached(ms::pg_init_retried), "pg_init retried");
    RC_CLASSIFY(final_state.reached(ms::busy_group_bypassed), "group bypassed by DEV_TEMP_BUSY");
    RC_CLASSIFY(final_state.reached(ms::nopath_timeout), "no-path timeout fired");
    RC_CLASSIFY(final_state.reached(ms::pushed_back), "I/O pushed back by noflush");
    RC_CLASSIFY(final_state.bio(), "bio mode");
    RC_CLASSIFY(final_state.has_handler(), "hardware handler");
  }
}

} // namespace mpath::inline v0::testing

#endif
