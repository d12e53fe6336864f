// text/*: the table grammar, which runs on table load and reload (never on the I/O path). Isolates
// parse and format of the worked example of kernel-target.md §2.5: two priority groups, four paths,
// a hardware handler and two features.
#include <mpath/table.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string_view>

namespace {

constexpr std::string_view worked_example = "0 209715200 multipath 3 queue_if_no_path pg_init_retries 5 1 alua 2 1 "
                                            "service-time 0 2 2 8:16 1 1 8:32 1 4 round-robin 0 2 1 8:48 1 8:64 1";

void parse_table(benchmark::State& state) {
  for (auto _ : state) {
    auto table = mpath::parse_table(worked_example);
    if (!table)
      std::abort();
    benchmark::DoNotOptimize(table);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(parse_table)->Name("text/parse_table/worked_example");

void format_table(benchmark::State& state) {
  const auto table = mpath::parse_table(worked_example);
  if (!table)
    std::abort();
  for (auto _ : state) {
    auto text = mpath::format_table(*table);
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(format_table)->Name("text/format_table/worked_example");

} // namespace
