// The reference model against the hand-checked scenario outputs: every examples/scenarios/*.mpath
// script is run on the models alone (testing/model.hpp and testing/health_model.hpp; no engine or
// monitor involved) and must print exactly its .out file. This is the models' own evidence,
// independent of the engine and monitor they are compared with in model_test.cpp.
//
// The interpreter is testing/script.hpp's, shared with mpathctl, so scripts with usage errors run
// too and must end with the exit status they declare (`# expected exit status: N`, else 0).

#include <mpath/table.hpp>
#include <mpath/testing/model.hpp>
#include <mpath/testing/script.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace mt = mpath::testing;

std::filesystem::path scenarios_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "examples" / "scenarios";
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs a script on reference models (one per device, the kernel's with multipathd's on top, or
/// seed 003's for create2003): the same interpreter mpathctl runs, over the models instead of the
/// engine, the health monitor and the seed 003 front end.
std::pair<std::string, int> run_on_model(const std::string& script) {
  std::istringstream in(script);
  std::ostringstream out;
  int status = mt::run_script<mt::health_reference_model>(in, out, &mt::make_health_model_target,
                                                          &mt::make_seed2003_model_target);
  return {out.str(), status};
}

} // namespace

TEST_CASE("model: reproduces every examples/scenarios output by itself") {
  auto dir = scenarios_dir();
  REQUIRE(std::filesystem::is_directory(dir));
  std::size_t checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".mpath")
      continue;
    std::string script = read(e.path());
    int expected_status = 0;
    if (auto at = script.find("# expected exit status: "); at != std::string::npos)
      expected_status = std::stoi(script.substr(at + 24));
    auto expected_path = e.path();
    expected_path.replace_extension(".out");
    CAPTURE(e.path().filename().string());
    auto [output, status] = run_on_model(script);
    CHECK(output == read(expected_path));
    CHECK(status == expected_status);
    ++checked;
  }
  CHECK(checked >= 5);
}
