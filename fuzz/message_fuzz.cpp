// Fuzz target: target messages (kernel-target.md §3), differentially against the reference model.
// The first byte picks one of a few tables; every following line is one message, split into words as
// DM core splits them, followed by one I/O, its completion and `run`, so that group and path changes
// take effect. Properties: no crash, no sanitizer report, and after every line the engine's answer,
// TABLE, INFO and stats equal the model's.

#include <mpath/detail/text.hpp>
#include <mpath/table.hpp>
#include <mpath/testing/model.hpp>
#include <mpath/testing/script.hpp>
#include <mpath/testing/sim.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::array<std::string_view, 4> tables{
    "1 queue_if_no_path 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 queue-length 0 2 1 8:48 1 8:64 1",
    "2 pg_init_retries 1 1 alua 3 2 round-robin 0 1 0 8:16 service-time 0 2 2 8:32 1 1 8:48 1 4 "
    "round-robin 0 1 0 8:16",
    "2 queue_mode bio 0 1 1 queue-length 0 3 0 a b c",
    "0 0 1 1 round-robin 0 1 0 8:16",
};

[[noreturn]] void violated(const std::string& what, std::string_view input) {
  std::fprintf(stderr, "message_fuzz: %s\ninput: %.*s\n", what.c_str(), int(input.size()), input.data());
  __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 4096)
    return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view table_text = tables[std::size_t(data[0]) % tables.size()];
  auto parsed = mpath::parse_table(table_text);
  auto made = mpath::testing::sim_device<>::create(table_text);
  if (!parsed || !made)
    violated("a fixed table was refused", table_text);
  auto& device = **made;
  mpath::testing::reference_model model(mpath::testing::model_table::from(*parsed));

  using step = mpath::testing::script_step;
  auto both = [&](const step& s, std::string_view line) {
    auto want = mpath::testing::run_step(model, s);
    auto got = mpath::testing::run_step(device, s);
    if (want != got)
      violated("the engine answered `" + (got.empty() ? std::string() : got[0]) + "`, the model `" +
                   (want.empty() ? std::string() : want[0]) + "`",
               line);
    if (mpath::testing::observe(model) != mpath::testing::observe(device))
      violated("state differs from the model after `" + s.line("mp") + "`: engine " +
                   device.engine().status(mpath::status_type::info),
               line);
  };

  std::size_t lines = 0;
  for (std::size_t pos = 1; pos < input.size() && lines < 64; ++lines) {
    std::size_t end = input.find('\n', pos);
    if (end == std::string_view::npos)
      end = input.size();
    std::string_view line = input.substr(pos, end - pos);
    pos = end + 1;
    step msg;
    msg.what = step::kind::message;
    msg.words = mpath::detail::split_words(line);
    if (msg.words.empty())
      continue;
    both(msg, line);
    step io;
    io.what = step::kind::io;
    io.count = 1;
    both(io, line);
    step complete;
    complete.what = step::kind::complete;
    complete.count = 1;
    both(complete, line);
    step run;
    run.what = step::kind::run;
    both(run, line);
  }
  return 0;
}
