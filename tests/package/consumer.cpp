// The program every packaging test builds: it uses mpath exactly as a consumer would, through
// <mpath/table.hpp> only. It parses the worked example of kernel-target.md §2.5, prints the
// canonical table text, and fails unless that text parses back to itself.
#include <mpath/table.hpp>

#include <cstdio>
#include <string>

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
  return again && mpath::format_table(*again) == text ? 0 : 1;
}
