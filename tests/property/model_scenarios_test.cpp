// The reference model against the hand-checked scenario outputs: every examples/scenarios/*.mpath
// script is run on the model alone (no engine involved) and must print exactly its .out file. This is
// the model's own evidence, independent of the engine it is compared with in model_test.cpp.
//
// Scripts that exercise mpathctl's usage errors (`# expected exit status: 2`) are mpathctl's
// business, not the model's, and are skipped.

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
using step = mt::script_step;

std::filesystem::path scenarios_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "examples" / "scenarios";
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<mpath::blk_status> status_named(const std::string& w) {
  for (int i = 0; i < 20; ++i)
    if (mpath::to_string(mpath::blk_status(i)) == w)
      return mpath::blk_status(i);
  return std::nullopt;
}

/// Runs a script on reference models (one per device) and returns what mpathctl would print.
std::string run_on_model(const std::string& script) {
  std::map<std::string, std::unique_ptr<mt::reference_model>> devices;
  std::ostringstream out;
  std::istringstream in(script);
  for (std::string line; std::getline(in, line);) {
    auto w = mpath::detail::split_words(line);
    if (w.empty() || w[0][0] == '#')
      continue;
    const std::string& cmd = w[0];
    if (cmd == "echo") {
      for (std::size_t i = 1; i < w.size(); ++i)
        out << (i > 1 ? " " : "") << w[i];
      out << '\n';
      continue;
    }
    REQUIRE(w.size() >= 2);
    if (cmd == "create") {
      std::string text;
      for (std::size_t i = 2; i < w.size(); ++i)
        text += (i > 2 ? " " : "") + w[i];
      auto t = mpath::parse_table(text);
      if (!t) {
        out << mt::script_error_line(t.err().code, t.err().text) << '\n';
        continue;
      }
      devices[w[1]] = std::make_unique<mt::reference_model>(mt::model_table::from(*t));
      continue;
    }
    INFO(line);
    REQUIRE(devices.count(w[1]) == 1);
    auto& m = *devices[w[1]];
    step s;
    if (cmd == "remove") {
      devices.erase(w[1]);
      continue;
    } else if (cmd == "table" || cmd == "status" || cmd == "stats") {
      auto lines = mt::observe(m); // table, status, stats...
      if (cmd == "table")
        out << lines[0] << '\n';
      else if (cmd == "status")
        out << lines[1] << '\n';
      else
        for (std::size_t i = 2; i < lines.size(); ++i)
          out << lines[i] << '\n';
      continue;
    } else if (cmd == "io") {
      s.what = step::kind::io;
      s.count = std::stoull(w[2]);
      s.bytes = w.size() > 3 ? std::stoull(w[3]) : 4096;
    } else if (cmd == "complete") {
      s.what = step::kind::complete;
      s.path = w[2] == "all" ? "" : w[2];
      s.count = w[3] == "all" ? step::all : std::stoull(w[3]);
      if (w.size() > 4) {
        auto st = status_named(w[4]);
        REQUIRE(st);
        s.status = *st;
      }
    } else if (cmd == "fault") {
      s.what = step::kind::fault;
      s.path = w[2];
      s.flag = w[3] == "on";
    } else if (cmd == "hwh") {
      s.what = step::kind::hwh;
      for (std::size_t i = 2; i < w.size(); ++i) {
        bool found = false;
        for (const auto& [name, value] : mt::script_activation_names)
          if (name == w[i]) {
            s.results.push_back(value);
            found = true;
          }
        REQUIRE(found);
      }
    } else if (cmd == "run") {
      s.what = step::kind::run;
    } else if (cmd == "sleep") {
      s.what = step::kind::sleep;
      s.count = std::stoull(w[2]);
    } else if (cmd == "suspend") {
      s.what = step::kind::suspend;
      s.flag = w.size() > 2;
    } else if (cmd == "resume") {
      s.what = step::kind::resume;
    } else if (cmd == "message") {
      s.what = step::kind::message;
      s.words.assign(w.begin() + 2, w.end());
    } else if (cmd == "option") {
      s.what = step::kind::option;
      s.count = std::stoull(w[3]);
    } else if (cmd == "events") {
      s.what = step::kind::events;
    } else {
      FAIL("command the model replay does not know: " << cmd);
    }
    for (const auto& l : mt::run_step(m, s))
      out << l << '\n';
  }
  return out.str();
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
    if (script.find("# expected exit status:") != std::string::npos)
      continue;
    auto expected_path = e.path();
    expected_path.replace_extension(".out");
    CAPTURE(e.path().filename().string());
    CHECK(run_on_model(script) == read(expected_path));
    ++checked;
  }
  CHECK(checked >= 5);
}
