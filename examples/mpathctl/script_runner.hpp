#pragma once
// mpathctl's script runner: the language of product.md §6 (include/mpath/testing/script.hpp) over
// simulated devices. main.cpp and the fuzzer call the same function.

#include <iosfwd>
#include <string_view>

namespace mpathctl {

/// Runs a script from `in`, printing to `out`; returns the exit status (0, or 2 after a usage
/// line).
int run_script(std::istream& in, std::ostream& out);

/// `mpathctl --help`.
extern const std::string_view help_text;

} // namespace mpathctl
