#pragma once
// Runs a rapidcheck property inside a doctest test case (style.md §11): a failure becomes a doctest
// failure carrying rapidcheck's report (the shrunk counterexample). Only rapidcheck's assertion
// macros (RC_ASSERT, RC_FAIL, ...) may be used inside the property.
//
// RC_PARAMS works as usual (seed=, max_success=, max_size=, reproduce=, verbose_progress=...). When
// it does not set max_success, MP_RC_CHECK_N's `default_tests` applies, so the sanitizer builds of
// the test command stay fast; `RC_PARAMS="max_success=5000"` runs more.

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>

namespace mp_test {

inline rc::detail::TestParams rc_params(int default_tests) {
  auto params = rc::detail::configuration().testParams;
  const char* env = std::getenv("RC_PARAMS");
  if (default_tests > 0 && (env == nullptr || std::string(env).find("max_success") == std::string::npos))
    params.maxSuccess = default_tests;
  return params;
}

template <class Testable>
bool rc_check_at(const char* file, int line, const std::string& description, int default_tests, Testable&& testable) {
  rc::detail::TestMetadata metadata;
  metadata.id = description;
  metadata.description = description;
  const auto& config = rc::detail::configuration();
  const auto result =
      config.reproduce.count(description) != 0
          ? rc::detail::checkTestable(std::forward<Testable>(testable), metadata)
          : rc::detail::checkTestable(std::forward<Testable>(testable), metadata, rc_params(default_tests));
  if (result.template is<rc::detail::SuccessResult>()) {
    if (!result.template get<rc::detail::SuccessResult>().distribution.empty()) {
      std::cout << "- " << description << '\n';
      rc::detail::printResultMessage(result, std::cout);
      std::cout << '\n';
    }
    return true;
  }
  std::ostringstream os;
  rc::detail::printResultMessage(result, os);
  DOCTEST_ADD_FAIL_CHECK_AT(file, line, "property failed: " << description << "\n" << os.str());
  return false;
}

} // namespace mp_test

/// MP_RC_CHECK(description, testable): rapidcheck's default number of tests (100).
#define MP_RC_CHECK(description, ...) ::mp_test::rc_check_at(__FILE__, __LINE__, (description), 0, __VA_ARGS__)
/// MP_RC_CHECK_N(description, tests, testable): `tests` cases unless RC_PARAMS says max_success.
#define MP_RC_CHECK_N(description, tests, ...)                                                                         \
  ::mp_test::rc_check_at(__FILE__, __LINE__, (description), (tests), __VA_ARGS__)
