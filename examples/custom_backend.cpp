// custom_backend.cpp: an IoBackend written from scratch. A RAM disk is reachable over two paths,
// "left" and "right"; unplugging one makes the engine fail it and retry on the other.
//
//   c++ -std=c++20 -I include examples/custom_backend.cpp -pthread && ./a.out
//
// Single-threaded on purpose: the transport "answers" when main() calls poll(), which is where a
// real backend's completion thread would call engine.complete(). See docs/backends.md.

#include <mpath/multipath.hpp>
#include <mpath/requeue_list.hpp>
#include <mpath/thread_executor.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

// 1. The I/O type: the engine's 32 bytes (io_context) plus what the transport needs.
struct ram_io : mpath::io_context {
  bool write = false;
  std::uint64_t offset = 0;
  char* buffer = nullptr;
  mpath::blk_status result = mpath::blk_status::ok;
  bool done = false;
};

// 2. The backend: four members and two types.
struct ram_backend {
  using handle_type = int; // what a path needs to reach the device: here, which path
  using io_type = ram_io;

  std::vector<char> disk = std::vector<char>(1 << 20);
  bool unplugged[2] = {false, false};
  std::deque<std::pair<int, ram_io*>> in_flight; // handed to the "transport", not answered yet
  mpath::requeue_list<ram_io> requeue;           // I/Os the engine gave back to resubmit (DM core's job)

  mpath::result<int> open_path(std::string_view token) { // a table's path token -> a handle
    if (token == "left" || token == "right")
      return token == "left" ? 0 : 1;
    return mpath::error{ENODEV, "error getting device"};
  }
  void submit(int& path, ram_io& io) noexcept { in_flight.push_back({path, &io}); } // start it, never block
  void io_done(ram_io& io, mpath::blk_status s) noexcept {                          // the engine is finished with io
    io.result = s;
    io.done = true;
  }
  mpath::blk_status probe(int& path) noexcept { // one synchronous block read, for path checking
    return unplugged[path] ? mpath::blk_status::transport : mpath::blk_status::ok;
  }
  void kick_requeue() noexcept { requeue.kick(); } // optional: the engine says "resubmit the delayed ones now"
};
static_assert(mpath::IoBackend<ram_backend>);

using engine_type = mpath::multipath<ram_backend, mpath::thread_executor>;

// 3. The completion side: do (or fail) each I/O and report it. In request mode (the default) the
//    engine may answer an I/O `requeue` (submit it again now) or `delay_requeue` (after 100 ms, or
//    when it kicks): the requeue list keeps both, and drive() resubmits them when they are due.
void poll(ram_backend& b, engine_type& engine, mpath::thread_executor& exec) {
  while (!b.in_flight.empty()) {
    auto [path, io] = b.in_flight.front();
    b.in_flight.pop_front();
    auto status = mpath::blk_status::transport; // what a pulled cable looks like
    if (!b.unplugged[path]) {
      char* at = b.disk.data() + io->offset;
      io->write ? std::memcpy(at, io->buffer, io->nr_bytes) : std::memcpy(io->buffer, at, io->nr_bytes);
      status = mpath::blk_status::ok;
    }
    b.requeue.hold(*io, engine.complete(*io, status), exec.now_ns());
  }
}

void drive(ram_backend& b, engine_type& engine, mpath::thread_executor& exec) {
  for (;;) {
    poll(b, engine, exec);
    auto due = b.requeue.take_due(exec.now_ns());
    if (due.empty()) {
      if (b.requeue.empty())
        return;                                                  // nothing in flight, nothing to resubmit
      std::this_thread::sleep_for(std::chrono::milliseconds(1)); // a delayed one: its time, or a kick
      continue;
    }
    while (ram_io* io = due.pop_front())
      b.requeue.hold(*io, engine.submit(*io), exec.now_ns());
  }
}

int main() {
  ram_backend backend;
  mpath::thread_executor exec;
  // One group, round-robin over both paths; queue I/O rather than fail it if both go away.
  auto engine = engine_type::create(backend, exec, "1 queue_if_no_path 0 1 1 round-robin 0 2 1 left 1 right 1");
  if (!engine)
    return std::printf("table: %s\n", engine.err().text.c_str()), 1;

  char blocks[16][512];
  std::vector<ram_io> ios(16);
  for (int i = 0; i < 16; ++i) {
    if (i == 8)
      backend.unplugged[0] = true; // halfway through, "left" goes away
    std::memset(blocks[i], 'a' + i, 512);
    ios[i].write = true, ios[i].offset = 512u * unsigned(i), ios[i].buffer = blocks[i], ios[i].nr_bytes = 512;
    backend.requeue.hold(ios[i], (*engine)->submit(ios[i]), exec.now_ns());
    drive(backend, **engine, exec);
  }
  int good = 0;
  for (int i = 0; i < 16; ++i)
    good += ios[i].done && ios[i].result == mpath::blk_status::ok && backend.disk[512u * unsigned(i)] == 'a' + i;
  std::printf("%d of 16 writes landed; status: %s\n", good, (*engine)->status(mpath::status_type::info).c_str());
  return good == 16 ? 0 : 1;
}
