// mpathctl: a dmsetup-like driver for the mpath engine. `mpathctl SCRIPT` runs a script over the
// simulation (product.md §6, a contract), `mpathctl demo` drives real files through it.

#include "demo.hpp"
#include "script_runner.hpp"

#include <mpath/version.hpp>

#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << mpathctl::help_text;
    return 0;
  }
  if (!args.empty() && args[0] == "--version") {
    std::cout << "mpathctl (mpath " << MPATH_VERSION_MAJOR << '.' << MPATH_VERSION_MINOR << '.' << MPATH_VERSION_PATCH
              << ")\n";
    return 0;
  }
  if (!args.empty() && args[0] == "demo")
    return mpathctl::run_demo(argc - 1, argv + 1);
  if (args.size() > 1 || (!args.empty() && args[0].size() > 1 && args[0].front() == '-')) {
    std::cerr << "usage: mpathctl [SCRIPT] | mpathctl demo [OPTIONS] | mpathctl --help\n";
    return 2;
  }
  if (args.empty() || args[0] == "-")
    return mpathctl::run_script(std::cin, std::cout);
  std::ifstream file{std::string(args[0])};
  if (!file) {
    std::cerr << "mpathctl: cannot read " << args[0] << '\n';
    return 1;
  }
  return mpathctl::run_script(file, std::cout);
}
