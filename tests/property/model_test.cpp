// The engine against the reference model (include/mpath/testing/model.hpp): random tables and random
// mpathctl scripts, checked after every step by include/mpath/testing/property.hpp. A failure prints
// the shrunk counterexample as an mpathctl script.
//
// More cases: RC_PARAMS="max_success=2000" build/ci/tests/mpath_tests -tc='model:*'
// Replay a failure: the RC_PARAMS="reproduce=..." line rapidcheck prints at exit.

#include <mpath/testing/property.hpp>

#include "support/rc_doctest.hpp"

#include <doctest/doctest.h>

namespace mt = mpath::testing;

TEST_CASE("model: the engine behaves as the reference model on random tables and scripts") {
  MP_RC_CHECK_N("engine == model", 150, [] {
    mt::model_check<> check;
    check.classify = true;
    mt::check_against_model(*mt::gen_table(), check);
  });
}

TEST_CASE("model: an engine used through one channel behaves as the reference model") {
  // One submitting thread with its own channel must see the kernel's choices exactly (issue 11).
  // Request mode only: in bio mode the engine reissues held I/O itself, from its worker, through
  // the selectors' own state (a second channel, as it were).
  MP_RC_CHECK_N("engine through a channel == model", 150, [] {
    auto table = *rc::gen::suchThat(mt::gen_table(), [](const mt::generated_table& t) { return !t.model.bio; });
    mt::model_check<> check;
    check.through_channel = true;
    mt::check_against_model(table, check);
  });
}

TEST_CASE("model: a request-mode table with a hardware handler and retries") {
  MP_RC_CHECK_N("handler, retries, two groups", 50, [] {
    mt::check_against_model(mt::fixed_table("3 queue_if_no_path pg_init_retries 2 1 alua 2 1 round-robin 0 2 1 8:16 1 "
                                            "8:32 1 queue-length 0 2 1 8:48 1 8:64 1"));
  });
}

TEST_CASE("model: a bio-mode table") {
  MP_RC_CHECK_N("bio mode, service-time", 50, [] {
    mt::check_against_model(mt::fixed_table(
        "3 queue_if_no_path queue_mode bio 0 2 1 service-time 0 2 2 8:16 1 1 8:32 1 4 round-robin 0 1 1 8:48 2"));
  });
}

TEST_CASE("model: historical-service-time with and without a threshold") {
  MP_RC_CHECK_N("historical-service-time", 50, [] {
    mt::check_against_model(mt::fixed_table("1 queue_if_no_path 0 2 1 historical-service-time 2 972 2 3 0 a b c "
                                            "historical-service-time 0 2 1 d 1 e 1"));
  });
}
