// health/topology.hpp: `multipath -ll`'s layout (product.md §8.7) and `show maps json` for
// simulated devices, with and without the health monitor, and the same text as the health
// reference model's `topology` (include/mpath/testing/health_model.hpp) for the same script.

#include <mpath/health/topology.hpp>
#include <mpath/table.hpp>
#include <mpath/testing/health_model.hpp>
#include <mpath/testing/health_sim.hpp>
#include <mpath/testing/sim.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace h = mpath::health;
namespace mt = mpath::testing;
using cr = h::check_result;

std::unique_ptr<mt::health_sim_device<>> make_health(std::string_view table) {
  auto d = mt::health_sim_device<>::create(table, "mp");
  REQUIRE(d);
  return std::move(*d);
}

void policy(mt::health_sim_device<>& d, std::string key, std::string value) {
  std::vector<std::string> v{value};
  REQUIRE(d.policy(key, v));
}

std::string topology(mt::health_sim_device<>& d) {
  if (d.monitor())
    return h::format_topology(h::topology_of(d.device().engine(), *d.monitor(), d.map_name()));
  return h::format_topology(h::topology_of(d.device().engine(), d.map_name()));
}

/// The same script on the simulated engine with its monitor and on the health reference model.
struct twin {
  explicit twin(std::string_view table) : sim(make_health(table)), model(model_of(table)) {}

  static mt::health_reference_model model_of(std::string_view table) {
    auto t = mpath::parse_table(table);
    REQUIRE(t);
    return mt::health_reference_model(mt::model_table::from(*t), "mp");
  }

  void policy(std::string key, std::string value) {
    std::vector<std::string> v{value};
    REQUIRE(sim->policy(key, v));
    REQUIRE(model.policy(key, v) == std::nullopt);
  }
  void probe(std::string path, cr r) {
    sim->probe(path, r);
    model.probe(path, r);
  }
  void prio(std::string path, int n) {
    sim->prio(path, n);
    model.prio(path, n);
  }
  void fault(std::string path, bool on) {
    sim->device().backend().set_fault(path, on);
    model.fault(path, on);
  }
  void io(std::size_t n) {
    sim->device().io(n);
    model.io(n);
  }
  void sleep(std::uint64_t ms) {
    sim->device().sleep(ms);
    model.sleep(ms);
  }
  void message(std::vector<std::string> words) {
    std::string text;
    for (const auto& w : words)
      text += w + " ";
    REQUIRE(sim->device().engine().message(text));
    sim->device().run();
    REQUIRE(model.message(words).code == 0);
  }
  /// The model's lines, each ended by a newline, as format_topology prints them.
  std::string model_text() const {
    std::string out;
    for (const auto& line : model.topology())
      out += line + "\n";
    return out;
  }
  /// Both topologies, required identical; returns the text.
  std::string same() {
    std::string lib = topology(*sim);
    CHECK(lib == model_text());
    return lib;
  }

  std::unique_ptr<mt::health_sim_device<>> sim;
  mt::health_reference_model model;
};

constexpr std::string_view example =
    "1 queue_if_no_path 0 2 1 round-robin 0 2 1 8:16 1 8:32 1 round-robin 0 1 1 8:48 1";

} // namespace

// ------------------------------------------------------------------------ text (§8.7)

TEST_CASE("topology: two groups with a failed path, with the health monitor") {
  auto d = make_health(example);
  d->probe("8:32", cr::down);
  d->prio("8:16", 50);
  d->prio("8:48", 10);
  policy(*d, "polling_interval", "5");
  d->device().sleep(1000); // the first tick: 8:32 is checked down and failed
  d->device().io(1);
  CHECK(topology(*d) == "mp\n"
                        "features='1 queue_if_no_path' hwhandler='0' wp=rw\n"
                        "|-+- policy='round-robin 0' prio=50 status=active\n"
                        "| |- 8:16 active ready\n"
                        "| `- 8:32 failed faulty\n"
                        "`-+- policy='round-robin 0' prio=10 status=enabled\n"
                        "  `- 8:48 active ready\n");

  // The whole first group gone: it has no usable path, so prio 0 (§8.5, §8.7); it stays the
  // active group until the next I/O picks another.
  d->probe("8:16", cr::down);
  d->device().sleep(5000);
  CHECK(topology(*d) == "mp\n"
                        "features='1 queue_if_no_path' hwhandler='0' wp=rw\n"
                        "|-+- policy='round-robin 0' prio=0 status=active\n"
                        "| |- 8:16 failed faulty\n"
                        "| `- 8:32 failed faulty\n"
                        "`-+- policy='round-robin 0' prio=10 status=enabled\n"
                        "  `- 8:48 active ready\n");
  d->device().io(1);
  CHECK(topology(*d) == "mp\n"
                        "features='1 queue_if_no_path' hwhandler='0' wp=rw\n"
                        "|-+- policy='round-robin 0' prio=0 status=enabled\n"
                        "| |- 8:16 failed faulty\n"
                        "| `- 8:32 failed faulty\n"
                        "`-+- policy='round-robin 0' prio=10 status=active\n"
                        "  `- 8:48 active ready\n");
}

TEST_CASE("topology: without a monitor the checker column is undef and prio 0") {
  auto d = mt::sim_device<>::create(example);
  REQUIRE(d);
  auto& dev = **d;
  REQUIRE(dev.engine().message("fail_path 8:32"));
  dev.io(1);
  CHECK(h::format_topology(h::topology_of(dev.engine(), "mp")) == "mp\n"
                                                                  "features='1 queue_if_no_path' hwhandler='0' wp=rw\n"
                                                                  "|-+- policy='round-robin 0' prio=0 status=active\n"
                                                                  "| |- 8:16 active undef\n"
                                                                  "| `- 8:32 failed undef\n"
                                                                  "`-+- policy='round-robin 0' prio=0 status=enabled\n"
                                                                  "  `- 8:48 active undef\n");
}

TEST_CASE("topology: columns padded over the whole map, handler words, a disabled group") {
  auto d = mt::sim_device<>::create("0 1 alua 2 1 round-robin 0 1 1 /dev/sdb 1 service-time 0 2 2 8:32 1 1 "
                                    "/dev/nvme0n1 1 2");
  REQUIRE(d);
  auto& dev = **d;
  REQUIRE(dev.engine().message("fail_path 8:32"));
  REQUIRE(dev.engine().message("disable_group 2"));
  CHECK(h::format_topology(h::topology_of(dev.engine(), "mpatha")) ==
        "mpatha\n"
        "features='0' hwhandler='1 alua' wp=rw\n"
        "|-+- policy='round-robin 0' prio=0 status=enabled\n"
        "| `- /dev/sdb     active undef\n"
        "`-+- policy='service-time 0' prio=0 status=disabled\n"
        "  |- 8:32         failed undef\n"
        "  `- /dev/nvme0n1 active undef\n");
}

// ------------------------------------------------------------------------ JSON

TEST_CASE("topology: show maps json for a small device") {
  auto d = make_health("0 0 1 1 round-robin 0 2 1 8:16 1 8:32 1");
  d->probe("8:32", cr::down);
  d->prio("8:16", 50);
  policy(*d, "polling_interval", "5");
  d->device().sleep(1000);
  auto topo = h::topology_of(d->device().engine(), *d->monitor(), "mp");
  CHECK(h::show_maps_json(std::span(&topo, 1)) == R"({
   "major_version": 0,
   "minor_version": 1,
   "maps": [{
      "name" : "mp",
      "paths" : 2,
      "write_prot" : "rw",
      "features" : "0",
      "hwhandler" : "0",
      "path_faults" : 1,
      "path_groups": [{
         "selector" : "round-robin 0",
         "pri" : 50,
         "dm_st" : "enabled",
         "group" : 1,
         "paths": [{
            "dev" : "8:16",
            "dm_st" : "active",
            "chk_st" : "ready",
            "pri" : 50
         },{
            "dev" : "8:32",
            "dm_st" : "failed",
            "chk_st" : "faulty",
            "pri" : -1
         }]
      }]
   }]
}
)");
  CHECK(h::show_map_json(topo) == R"({
   "major_version": 0,
   "minor_version": 1,
   "map":{
      "name" : "mp",
      "paths" : 2,
      "write_prot" : "rw",
      "features" : "0",
      "hwhandler" : "0",
      "path_faults" : 1,
      "path_groups": [{
         "selector" : "round-robin 0",
         "pri" : 50,
         "dm_st" : "enabled",
         "group" : 1,
         "paths": [{
            "dev" : "8:16",
            "dm_st" : "active",
            "chk_st" : "ready",
            "pri" : 50
         },{
            "dev" : "8:32",
            "dm_st" : "failed",
            "chk_st" : "faulty",
            "pri" : -1
         }]
      }]
   }
}
)");
}

TEST_CASE("topology: show maps json joins maps and groups, and escapes strings") {
  h::map_topology a;
  a.name = "a\"b\\c\n\x01";
  a.features = "0";
  a.hwhandler = "0";
  a.groups.push_back({"round-robin 0", 1, "active", {{"p\t1", true, 0, h::path_check_state::up, 1}}});
  a.groups.push_back({"round-robin 0", 0, "enabled", {{"p2", false, 3, h::path_check_state::delayed, 1}}});
  h::map_topology b;
  b.name = "b";
  b.features = "1 queue_if_no_path";
  b.hwhandler = "1 alua";
  std::vector<h::map_topology> maps{a, b};
  CHECK(h::show_maps_json(maps) == R"({
   "major_version": 0,
   "minor_version": 1,
   "maps": [{
      "name" : "a\"b\\c\n\u0001",
      "paths" : 2,
      "write_prot" : "rw",
      "features" : "0",
      "hwhandler" : "0",
      "path_faults" : 3,
      "path_groups": [{
         "selector" : "round-robin 0",
         "pri" : 1,
         "dm_st" : "active",
         "group" : 1,
         "paths": [{
            "dev" : "p\t1",
            "dm_st" : "active",
            "chk_st" : "ready",
            "pri" : 1
         }]
      },{
         "selector" : "round-robin 0",
         "pri" : 0,
         "dm_st" : "enabled",
         "group" : 2,
         "paths": [{
            "dev" : "p2",
            "dm_st" : "failed",
            "chk_st" : "delayed",
            "pri" : 1
         }]
      }]
   },{
      "name" : "b",
      "paths" : 0,
      "write_prot" : "rw",
      "features" : "1 queue_if_no_path",
      "hwhandler" : "1 alua",
      "path_faults" : 0,
      "path_groups": []
   }]
}
)");
  CHECK(h::show_maps_json({}) == "{\n   \"major_version\": 0,\n   \"minor_version\": 1,\n   \"maps\": []\n}\n");
}

// ------------------------------------------------------------------------ = the reference model

TEST_CASE("topology: the library's text is the health model's, product.md 8.7's example") {
  twin t(example);
  CHECK(t.same() == "mp\n"
                    "features='1 queue_if_no_path' hwhandler='0' wp=rw\n"
                    "|-+- policy='round-robin 0' prio=0 status=enabled\n"
                    "| |- 8:16 active undef\n"
                    "| `- 8:32 active undef\n"
                    "`-+- policy='round-robin 0' prio=0 status=enabled\n"
                    "  `- 8:48 active undef\n");
  t.probe("8:32", cr::down);
  t.policy("polling_interval", "5");
  t.same(); // running, not checked yet
  t.sleep(1000);
  t.io(1);
  CHECK(t.same() == "mp\n"
                    "features='1 queue_if_no_path' hwhandler='0' wp=rw\n"
                    "|-+- policy='round-robin 0' prio=1 status=active\n"
                    "| |- 8:16 active ready\n"
                    "| `- 8:32 failed faulty\n"
                    "`-+- policy='round-robin 0' prio=1 status=enabled\n"
                    "  `- 8:48 active ready\n");
}

TEST_CASE("topology: the library's text is the health model's, padding, ghost and a disabled group") {
  twin t("0 1 alua 1 1 round-robin 0 2 1 /dev/sdb 1 8:32 1");
  t.probe("8:32", cr::ghost);
  t.policy("polling_interval", "5");
  t.sleep(1000);
  t.same();
  t.message({"disable_group", "1"});
  CHECK(t.same() == "mp\n"
                    "features='0' hwhandler='1 alua' wp=rw\n"
                    "`-+- policy='round-robin 0' prio=1 status=disabled\n"
                    "  |- /dev/sdb active ready\n"
                    "  `- 8:32     active ghost\n");
}

TEST_CASE("topology: the library's text is the health model's, priorities, failures and failback") {
  twin t("1 queue_if_no_path 0 3 1 round-robin 0 1 1 8:16 1 round-robin 0 2 1 8:32 1 8:48 1 queue-length 0 1 1 "
         "/dev/nvme0n1 1");
  t.prio("8:16", 10);
  t.prio("8:32", 50);
  t.prio("8:48", 20);
  t.prio("/dev/nvme0n1", 5);
  t.policy("failback", "immediate");
  t.policy("no_path_retry", "2");
  t.io(2);
  t.sleep(1000); // first tick: every path up, failback to group 2 (average 35)
  t.io(2);
  CHECK(t.same() == "mp\n"
                    "features='1 queue_if_no_path' hwhandler='0' wp=rw\n"
                    "|-+- policy='round-robin 0' prio=10 status=enabled\n"
                    "| `- 8:16         active ready\n"
                    "|-+- policy='round-robin 0' prio=35 status=active\n"
                    "| |- 8:32         active ready\n"
                    "| `- 8:48         active ready\n"
                    "`-+- policy='queue-length 0' prio=5 status=enabled\n"
                    "  `- /dev/nvme0n1 active ready\n");
  t.fault("8:32", true);
  t.io(4);
  t.sleep(2000);
  t.same();
  t.probe("8:32", cr::down);
  t.probe("8:48", cr::timeout);
  t.sleep(5000);
  t.same();
  t.probe("8:32", cr::up);
  t.fault("8:32", false);
  t.sleep(10000);
  t.io(1);
  t.same();
}
