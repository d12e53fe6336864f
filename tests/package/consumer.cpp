// The program every packaging test builds: it uses mpath exactly as a consumer would, through the
// umbrella header <mpath/mpath.hpp> (product.md §2's first line). It parses the worked example of
// kernel-target.md §2.5, prints the canonical table text and fails unless that text parses back to
// itself; then it builds an engine over a backend that completes nothing by itself and sends one
// I/O through it.
#include <mpath/mpath.hpp>

#include <cstdio>
#include <string>

namespace {
struct consumer_io : mpath::io_context {};

struct inline_backend {
  using handle_type = int;
  using io_type = consumer_io;
  int done = 0;
  mpath::result<int> open_path(std::string_view) { return 0; }
  void submit(int, consumer_io&) noexcept {}
  void io_done(consumer_io&, mpath::blk_status s) noexcept { done += s == mpath::blk_status::ok; }
  mpath::blk_status probe(int) noexcept { return mpath::blk_status::ok; }
};
} // namespace

int main() {
  auto table =
      mpath::parse_table("0 209715200 multipath 3 queue_if_no_path pg_init_retries 5 1 alua 2 1 service-time 0 "
                         "2 2 8:16 1 1 8:32 1 4 round-robin 0 2 1 8:48 1 8:64 1");
  if (!table) {
    std::fprintf(stderr, "parse_table: %s: %s\n", mpath::errno_name(table.err().code).c_str(),
                 table.err().text.c_str());
    return 1;
  }
  const std::string text = mpath::format_table(*table);
  std::printf("%s\n", text.c_str());
  auto again = mpath::parse_table(text);
  if (!again || mpath::format_table(*again) != text)
    return 1;

  inline_backend backend;
  mpath::thread_executor exec;
  auto engine = mpath::multipath<inline_backend, mpath::thread_executor>::create(backend, exec,
                                                                                 "0 0 1 1 round-robin 0 2 1 a 1 b 1");
  if (!engine)
    return 1;
  consumer_io io;
  io.nr_bytes = 4096;
  if ((*engine)->submit(io) != mpath::disposition::dispatched ||
      (*engine)->complete(io, mpath::blk_status::ok) != mpath::disposition::completed || backend.done != 1)
    return 1;
  std::printf("one I/O through the engine: ok\n");
  return 0;
}
