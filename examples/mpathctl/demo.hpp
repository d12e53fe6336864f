#pragma once
// `mpathctl demo`: the live failover demo over real files, with the health layer on (demo.cpp).

namespace mpathctl {

/// Runs the demo; `argv[0]` is "demo", the options follow. Returns the process exit status:
/// 0 when every block verified and every I/O completed exactly once, without error except the
/// queued I/O that no_path_retry failed; 1 otherwise; 2 on bad usage.
int run_demo(int argc, char** argv);

} // namespace mpathctl
