// The library's concepts, each with a minimal conforming archetype (proof that the concept can be
// satisfied with exactly what it documents, nothing else) and near-misses that must not conform,
// one requirement broken each. Checked at namespace scope with static_assert and again at run time
// so the test report names them. The last test runs the engine over the archetypes alone, which
// shows that the engine asks no more of a backend and an executor than their concepts say.

#include <mpath/executor.hpp>
#include <mpath/hw_handler.hpp>
#include <mpath/io_backend.hpp>
#include <mpath/multipath.hpp>
#include <mpath/path.hpp>
#include <mpath/path_selector.hpp>
#include <mpath/priority_group.hpp>
#include <mpath/selectors.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using mpath::blk_status;
using mpath::path_index;
using mpath::result;
using mpath::status_type;

// =============================================================================== PathSelector

struct min_selector {
  static constexpr std::string_view name = "min";
  static constexpr unsigned table_args = 0;
  static constexpr unsigned info_args = 0;
  result<void> create(std::span<const std::string>) { return {}; }
  result<void> add_path(std::span<const std::string>) { return {}; }
  path_index select(std::uint64_t, std::uint64_t) noexcept { return mpath::no_path; }
  void fail_path(path_index) noexcept {}
  int reinstate_path(path_index) noexcept { return 0; }
  void group_status(std::string&) const {}
  void path_status(path_index, status_type, std::string&) const {}
};

struct selector_select_throws : min_selector {
  path_index select(std::uint64_t, std::uint64_t) { return mpath::no_path; }
};
struct selector_select_returns_int : min_selector {
  int select(std::uint64_t, std::uint64_t) noexcept { return 0; }
};
struct selector_fail_throws : min_selector {
  void fail_path(path_index) {}
};
struct selector_reinstate_void : min_selector {
  void reinstate_path(path_index) noexcept {}
};
struct selector_create_bool : min_selector {
  bool create(std::span<const std::string>) { return true; }
};
struct selector_status_not_const : min_selector {
  void group_status(std::string&) {}
};
struct selector_no_name {
  [[maybe_unused]] static constexpr unsigned table_args = 0;
  [[maybe_unused]] static constexpr unsigned info_args = 0;
  result<void> create(std::span<const std::string>) { return {}; }
  result<void> add_path(std::span<const std::string>) { return {}; }
  path_index select(std::uint64_t, std::uint64_t) noexcept { return mpath::no_path; }
  void fail_path(path_index) noexcept {}
  int reinstate_path(path_index) noexcept { return 0; }
  void group_status(std::string&) const {}
  void path_status(path_index, status_type, std::string&) const {}
};
struct selector_not_default_constructible : min_selector {
  explicit selector_not_default_constructible(int) {}
};

static_assert(mpath::PathSelector<min_selector>);
static_assert(!mpath::PathSelector<selector_select_throws>);
static_assert(!mpath::PathSelector<selector_select_returns_int>);
static_assert(!mpath::PathSelector<selector_fail_throws>);
static_assert(!mpath::PathSelector<selector_reinstate_void>);
static_assert(!mpath::PathSelector<selector_create_bool>);
static_assert(!mpath::PathSelector<selector_status_not_const>);
static_assert(!mpath::PathSelector<selector_no_name>);
static_assert(!mpath::PathSelector<selector_not_default_constructible>);

// =============================================================================== AccountingSelector

struct min_accounting_selector : min_selector {
  void start_io(path_index, std::uint64_t) noexcept {}
  void end_io(path_index, std::uint64_t, std::uint64_t, std::uint64_t) noexcept {}
};
struct accounting_start_throws : min_selector {
  void start_io(path_index, std::uint64_t) {}
  void end_io(path_index, std::uint64_t, std::uint64_t, std::uint64_t) noexcept {}
};
struct accounting_end_io_old_signature : min_selector { // the kernel's (path, bytes, start) only
  void start_io(path_index, std::uint64_t) noexcept {}
  void end_io(path_index, std::uint64_t, std::uint64_t) noexcept {}
};
struct accounting_without_selector { // start_io/end_io on something that is not a selector
  void start_io(path_index, std::uint64_t) noexcept {}
  void end_io(path_index, std::uint64_t, std::uint64_t, std::uint64_t) noexcept {}
};

static_assert(mpath::AccountingSelector<min_accounting_selector>);
static_assert(!mpath::AccountingSelector<min_selector>);
static_assert(!mpath::AccountingSelector<accounting_start_throws>);
static_assert(!mpath::AccountingSelector<accounting_end_io_old_signature>);
static_assert(!mpath::AccountingSelector<accounting_without_selector>);
static_assert(mpath::AccountingSelector<mpath::selectors::queue_length>);
static_assert(mpath::AccountingSelector<mpath::selectors::service_time>);
static_assert(!mpath::AccountingSelector<mpath::selectors::round_robin>);

// =============================================================================== ChannelSelector

struct min_channel_selector : min_selector {
  struct channel_state {};
  using min_selector::select;
  void attach(channel_state&) {}
  void detach(channel_state&) noexcept {}
  path_index select(channel_state&, std::uint64_t, std::uint64_t) noexcept { return mpath::no_path; }
  void start_io(channel_state&, path_index, std::uint64_t) noexcept {}
  void end_io(channel_state&, path_index, std::uint64_t, std::uint64_t, std::uint64_t) noexcept {}
};
struct channel_without_state : min_selector { // no channel_state type
  struct state {};
  void attach(state&) {}
  void detach(state&) noexcept {}
};
struct channel_select_throws : min_channel_selector {
  using min_channel_selector::select;
  path_index select(channel_state&, std::uint64_t, std::uint64_t) { return mpath::no_path; }
};
struct channel_detach_throws : min_channel_selector {
  void detach(channel_state&) {}
};
struct channel_without_end_io : min_selector {
  struct channel_state {};
  using min_selector::select;
  void attach(channel_state&) {}
  void detach(channel_state&) noexcept {}
  path_index select(channel_state&, std::uint64_t, std::uint64_t) noexcept { return mpath::no_path; }
  void start_io(channel_state&, path_index, std::uint64_t) noexcept {}
};

static_assert(mpath::ChannelSelector<min_channel_selector>);
static_assert(!mpath::ChannelSelector<min_selector>);
static_assert(!mpath::ChannelSelector<channel_without_state>);
static_assert(!mpath::ChannelSelector<channel_select_throws>);
static_assert(!mpath::ChannelSelector<channel_detach_throws>);
static_assert(!mpath::ChannelSelector<channel_without_end_io>);
static_assert(mpath::ChannelSelector<mpath::selectors::round_robin>);
static_assert(mpath::ChannelSelector<mpath::selectors::queue_length>);
static_assert(mpath::ChannelSelector<mpath::selectors::service_time>);
static_assert(mpath::ChannelSelector<mpath::selectors::historical_service_time>);

// =============================================================================== Path

struct min_path {
  using handle_type = int;
  std::string_view device() const noexcept { return "8:16"; }
  int& handle() noexcept { return h; }
  bool is_active() const noexcept { return true; }
  std::uint32_t fail_count() const noexcept { return 0; }
  int h = 0;
};

struct path_handle_by_value : min_path {
  int handle() noexcept { return h; }
};
struct path_active_int : min_path {
  int is_active() const noexcept { return 1; }
};
struct path_device_throws : min_path {
  std::string_view device() const { return "8:16"; }
};
struct path_no_handle_type {
  std::string_view device() const noexcept { return "8:16"; }
  int& handle() noexcept { return h; }
  bool is_active() const noexcept { return true; }
  std::uint32_t fail_count() const noexcept { return 0; }
  int h = 0;
};
struct path_fail_count_not_const : min_path {
  std::uint32_t fail_count() noexcept { return 0; }
};

static_assert(mpath::Path<min_path>);
static_assert(mpath::Path<mpath::basic_path<int>>);
static_assert(!mpath::Path<path_handle_by_value>);
static_assert(!mpath::Path<path_active_int>);
static_assert(!mpath::Path<path_device_throws>);
static_assert(!mpath::Path<path_no_handle_type>);
static_assert(!mpath::Path<path_fail_count_not_const>);

// =============================================================================== PriorityGroup

struct min_group {
  using path_type = min_path;
  using selector_type = min_selector;
  std::uint32_t number() const noexcept { return 1; }
  std::size_t size() const noexcept { return 1; }
  min_path& path(path_index) noexcept { return p; }
  min_selector& selector() noexcept { return s; }
  bool bypassed() const noexcept { return false; }
  min_path p;
  min_selector s;
};

struct group_number_int : min_group {
  int number() const noexcept { return 1; }
};
struct group_path_by_value : min_group {
  min_path path(path_index) noexcept { return p; }
};
struct group_bypassed_throws : min_group {
  bool bypassed() const { return false; }
};
struct group_no_selector_type {
  using path_type = min_path;
  std::uint32_t number() const noexcept { return 1; }
  std::size_t size() const noexcept { return 1; }
  min_path& path(path_index) noexcept { return p; }
  bool bypassed() const noexcept { return false; }
  min_path p;
};

static_assert(mpath::PriorityGroup<min_group>);
static_assert(mpath::PriorityGroup<mpath::basic_priority_group<min_selector, mpath::basic_path<int>>>);
static_assert(!mpath::PriorityGroup<group_number_int>);
static_assert(!mpath::PriorityGroup<group_path_by_value>);
static_assert(!mpath::PriorityGroup<group_bypassed_throws>);
static_assert(!mpath::PriorityGroup<group_no_selector_type>);

// =============================================================================== IoBackend

struct min_io : mpath::io_context {
  int completions = 0;
  blk_status status = blk_status::ok;
};

/// Submits nothing anywhere: it remembers the I/O so the test can complete it.
struct min_backend {
  using handle_type = int;
  using io_type = min_io;
  result<int> open_path(std::string_view) { return next++; }
  void submit(int& h, min_io& io) noexcept { in_flight.push_back({&io, h}); }
  void io_done(min_io& io, blk_status s) noexcept {
    ++io.completions;
    io.status = s;
  }
  blk_status probe(int&) noexcept { return blk_status::ok; }

  struct flight {
    min_io* io;
    int path;
  };
  std::vector<flight> in_flight;
  int next = 0;
};

struct plain_io { // not derived from io_context
  std::uint64_t nr_bytes = 0;
};
struct backend_io_not_derived : min_backend {
  using io_type = plain_io;
  void submit(int&, plain_io&) noexcept {}
  void io_done(plain_io&, blk_status) noexcept {}
};
struct backend_submit_throws : min_backend {
  void submit(int&, min_io&) {}
};
struct backend_io_done_throws : min_backend {
  void io_done(min_io&, blk_status) {}
};
struct backend_probe_bool : min_backend {
  bool probe(int&) noexcept { return true; }
};
struct backend_open_path_plain : min_backend {
  int open_path(std::string_view) { return 0; }
};
struct pinned_handle {
  pinned_handle() = default;
  pinned_handle(pinned_handle&&) = delete;
};
struct backend_handle_not_movable {
  using handle_type = pinned_handle;
  using io_type = min_io;
  result<pinned_handle> open_path(std::string_view);
  void submit(pinned_handle&, min_io&) noexcept {}
  void io_done(min_io&, blk_status) noexcept {}
  blk_status probe(pinned_handle&) noexcept { return blk_status::ok; }
};

static_assert(mpath::IoBackend<min_backend>);
static_assert(!mpath::IoBackend<backend_io_not_derived>);
static_assert(!mpath::IoBackend<backend_submit_throws>);
static_assert(!mpath::IoBackend<backend_io_done_throws>);
static_assert(!mpath::IoBackend<backend_probe_bool>);
static_assert(!mpath::IoBackend<backend_open_path_plain>);
static_assert(!mpath::IoBackend<backend_handle_not_movable>);

// =============================================================================== HwHandler

using engine_path = mpath::basic_path<int>;

struct min_handler {
  static bool accepts(std::string_view name) noexcept { return name == "min"; }
  result<void> set_params(std::span<const std::string>) { return {}; }
  template <class P> void activate(P&, mpath::activation_done done) noexcept { done(mpath::activation_result::ok); }
};

struct handler_accepts_not_static {
  bool accepts(std::string_view) const noexcept { return true; }
  result<void> set_params(std::span<const std::string>) { return {}; }
  template <class P> void activate(P&, mpath::activation_done) noexcept {}
};
struct handler_activate_throws {
  static bool accepts(std::string_view) noexcept { return true; }
  result<void> set_params(std::span<const std::string>) { return {}; }
  template <class P> void activate(P&, mpath::activation_done) {}
};
struct handler_set_params_bool {
  static bool accepts(std::string_view) noexcept { return true; }
  bool set_params(std::span<const std::string>) { return true; }
  template <class P> void activate(P&, mpath::activation_done) noexcept {}
};
struct handler_not_default_constructible : min_handler {
  explicit handler_not_default_constructible(int) {}
};

static_assert(mpath::HwHandler<min_handler, engine_path>);
static_assert(mpath::HwHandler<min_handler, min_path>);
static_assert(!mpath::HwHandler<min_handler, path_active_int>); // the path must be a Path
static_assert(!mpath::HwHandler<handler_accepts_not_static, engine_path>);
static_assert(!mpath::HwHandler<handler_activate_throws, engine_path>);
static_assert(!mpath::HwHandler<handler_set_params_bool, engine_path>);
static_assert(!mpath::HwHandler<handler_not_default_constructible, engine_path>);

// =============================================================================== ClassifyingHwHandler

struct min_classifying_handler : min_handler {
  template <class P> mpath::error_action classify(P&, blk_status) noexcept { return mpath::error_action::error_io; }
};
struct classify_returns_bool : min_handler {
  template <class P> bool classify(P&, blk_status) noexcept { return true; }
};
struct classify_throws : min_handler {
  template <class P> mpath::error_action classify(P&, blk_status) { return mpath::error_action::retry; }
};

static_assert(mpath::ClassifyingHwHandler<min_classifying_handler, engine_path>);
static_assert(!mpath::ClassifyingHwHandler<min_handler, engine_path>);
static_assert(!mpath::ClassifyingHwHandler<classify_returns_bool, engine_path>);
static_assert(!mpath::ClassifyingHwHandler<classify_throws, engine_path>);
static_assert(mpath::HwHandler<min_classifying_handler, engine_path>);

// =============================================================================== Clock and Executor

struct min_clock {
  std::uint64_t now_ns() const noexcept { return 0; }
};
struct clock_not_const {
  std::uint64_t now_ns() noexcept { return 0; }
};
struct clock_signed {
  std::int64_t now_ns() const noexcept { return 0; }
};
struct clock_throws {
  std::uint64_t now_ns() const { return 0; }
};

static_assert(mpath::Clock<min_clock>);
static_assert(!mpath::Clock<clock_not_const>);
static_assert(!mpath::Clock<clock_signed>);
static_assert(!mpath::Clock<clock_throws>);

/// Runs work when told to; ignores delays (every item is due at once).
struct min_executor {
  std::uint64_t now_ns() const noexcept { return 0; }
  bool post(mpath::work_item& w, std::uint64_t) noexcept {
    if (w.queued)
      return false;
    w.queued = true;
    queue.push_back(&w);
    return true;
  }
  bool cancel(mpath::work_item& w) noexcept {
    if (!w.queued)
      return false;
    w.queued = false;
    std::erase(queue, &w);
    return true;
  }
  bool cancel_sync(mpath::work_item& w) noexcept { return cancel(w); } // runs on the caller's thread only
  void run() noexcept {
    while (!queue.empty()) {
      mpath::work_item* w = queue.front();
      queue.erase(queue.begin());
      w->queued = false;
      w->fn(*w);
    }
  }
  std::vector<mpath::work_item*> queue;
};

struct executor_post_void : min_executor {
  void post(mpath::work_item&, std::uint64_t) noexcept {}
};
struct executor_cancel_throws : min_executor {
  bool cancel(mpath::work_item&) { return false; }
};
struct executor_without_clock {
  bool post(mpath::work_item&, std::uint64_t) noexcept { return true; }
  bool cancel(mpath::work_item&) noexcept { return true; }
  bool cancel_sync(mpath::work_item&) noexcept { return true; }
};
/// Only the non-waiting cancel: an engine could not tear down safely on it.
struct executor_without_cancel_sync {
  std::uint64_t now_ns() const noexcept { return 0; }
  bool post(mpath::work_item&, std::uint64_t) noexcept { return true; }
  bool cancel(mpath::work_item&) noexcept { return true; }
};

static_assert(mpath::Executor<min_executor>);
static_assert(!mpath::Executor<min_clock>);
static_assert(!mpath::Executor<executor_post_void>);
static_assert(!mpath::Executor<executor_cancel_throws>);
static_assert(!mpath::Executor<executor_without_clock>);
static_assert(!mpath::Executor<executor_without_cancel_sync>);

} // namespace

TEST_CASE("concepts: PathSelector and AccountingSelector archetypes and near-misses") {
  CHECK(mpath::PathSelector<min_selector>);
  CHECK_FALSE(mpath::PathSelector<selector_select_throws>);
  CHECK_FALSE(mpath::PathSelector<selector_select_returns_int>);
  CHECK_FALSE(mpath::PathSelector<selector_fail_throws>);
  CHECK_FALSE(mpath::PathSelector<selector_reinstate_void>);
  CHECK_FALSE(mpath::PathSelector<selector_create_bool>);
  CHECK_FALSE(mpath::PathSelector<selector_status_not_const>);
  CHECK_FALSE(mpath::PathSelector<selector_no_name>);
  CHECK_FALSE(mpath::PathSelector<selector_not_default_constructible>);
  CHECK(mpath::AccountingSelector<min_accounting_selector>);
  CHECK_FALSE(mpath::AccountingSelector<min_selector>);
  CHECK_FALSE(mpath::AccountingSelector<accounting_start_throws>);
  CHECK_FALSE(mpath::AccountingSelector<accounting_end_io_old_signature>);
  CHECK_FALSE(mpath::AccountingSelector<accounting_without_selector>);
}

TEST_CASE("concepts: ChannelSelector archetype and near-misses") {
  CHECK(mpath::ChannelSelector<min_channel_selector>);
  CHECK_FALSE(mpath::ChannelSelector<min_selector>);
  CHECK_FALSE(mpath::ChannelSelector<channel_without_state>);
  CHECK_FALSE(mpath::ChannelSelector<channel_select_throws>);
  CHECK_FALSE(mpath::ChannelSelector<channel_detach_throws>);
  CHECK_FALSE(mpath::ChannelSelector<channel_without_end_io>);
}

TEST_CASE("concepts: Path and PriorityGroup archetypes and near-misses") {
  CHECK(mpath::Path<min_path>);
  CHECK(mpath::Path<mpath::basic_path<int>>);
  CHECK_FALSE(mpath::Path<path_handle_by_value>);
  CHECK_FALSE(mpath::Path<path_active_int>);
  CHECK_FALSE(mpath::Path<path_device_throws>);
  CHECK_FALSE(mpath::Path<path_no_handle_type>);
  CHECK_FALSE(mpath::Path<path_fail_count_not_const>);
  CHECK(mpath::PriorityGroup<min_group>);
  CHECK_FALSE(mpath::PriorityGroup<group_number_int>);
  CHECK_FALSE(mpath::PriorityGroup<group_path_by_value>);
  CHECK_FALSE(mpath::PriorityGroup<group_bypassed_throws>);
  CHECK_FALSE(mpath::PriorityGroup<group_no_selector_type>);
}

TEST_CASE("concepts: IoBackend archetype and near-misses") {
  CHECK(mpath::IoBackend<min_backend>);
  CHECK_FALSE(mpath::IoBackend<backend_io_not_derived>);
  CHECK_FALSE(mpath::IoBackend<backend_submit_throws>);
  CHECK_FALSE(mpath::IoBackend<backend_io_done_throws>);
  CHECK_FALSE(mpath::IoBackend<backend_probe_bool>);
  CHECK_FALSE(mpath::IoBackend<backend_open_path_plain>);
  CHECK_FALSE(mpath::IoBackend<backend_handle_not_movable>);
}

TEST_CASE("concepts: HwHandler and ClassifyingHwHandler archetypes and near-misses") {
  CHECK(mpath::HwHandler<min_handler, engine_path>);
  CHECK_FALSE(mpath::HwHandler<min_handler, path_active_int>);
  CHECK_FALSE(mpath::HwHandler<handler_accepts_not_static, engine_path>);
  CHECK_FALSE(mpath::HwHandler<handler_activate_throws, engine_path>);
  CHECK_FALSE(mpath::HwHandler<handler_set_params_bool, engine_path>);
  CHECK_FALSE(mpath::HwHandler<handler_not_default_constructible, engine_path>);
  CHECK(mpath::ClassifyingHwHandler<min_classifying_handler, engine_path>);
  CHECK_FALSE(mpath::ClassifyingHwHandler<min_handler, engine_path>);
  CHECK_FALSE(mpath::ClassifyingHwHandler<classify_returns_bool, engine_path>);
  CHECK_FALSE(mpath::ClassifyingHwHandler<classify_throws, engine_path>);
}

TEST_CASE("concepts: Clock and Executor archetypes and near-misses") {
  CHECK(mpath::Clock<min_clock>);
  CHECK_FALSE(mpath::Clock<clock_not_const>);
  CHECK_FALSE(mpath::Clock<clock_signed>);
  CHECK_FALSE(mpath::Clock<clock_throws>);
  CHECK(mpath::Executor<min_executor>);
  CHECK_FALSE(mpath::Executor<min_clock>);
  CHECK_FALSE(mpath::Executor<executor_post_void>);
  CHECK_FALSE(mpath::Executor<executor_cancel_throws>);
  CHECK_FALSE(mpath::Executor<executor_without_clock>);
}

namespace {
struct archetype_traits : mpath::default_traits {
  using hw_handlers = mpath::hw_handler_set<min_classifying_handler>;
};
} // namespace

TEST_CASE("concepts: the engine runs over the minimal archetypes alone") {
  min_backend backend;
  min_executor exec;
  using engine = mpath::multipath<min_backend, min_executor, archetype_traits>;
  auto made = engine::create(backend, exec, "0 1 min 1 1 round-robin 0 2 0 8:16 8:32");
  REQUIRE(made);
  auto& e = **made;
  CHECK(e.status(status_type::table) == "0 1 min 1 1 round-robin 0 2 1 8:16 1 8:32 1 ");

  min_io a, b;
  a.nr_bytes = b.nr_bytes = 512;
  CHECK(e.submit(a) == mpath::disposition::delay_requeue); // pg_init through the archetype handler
  exec.run();
  CHECK(e.submit(a) == mpath::disposition::dispatched);
  CHECK(e.submit(b) == mpath::disposition::dispatched);
  REQUIRE(backend.in_flight.size() == 2);
  CHECK(backend.in_flight[0].path != backend.in_flight[1].path);
  // The archetype handler classifies every path error as "error the I/O": no path is failed.
  CHECK(e.complete(a, blk_status::transport) == mpath::disposition::completed);
  CHECK(a.status == blk_status::transport);
  CHECK(e.complete(b, blk_status::ok) == mpath::disposition::completed);
  CHECK(a.completions == 1);
  CHECK(b.completions == 1);
  CHECK(e.status(status_type::info) == "2 0 1 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0 ");
  CHECK(e.probe_paths());
  e.shutdown([&] { exec.run(); });
}
