#pragma once
// A priority group: paths that are used together, with one selector choosing among them. The
// engine uses one group at a time and fails over between groups.

#include <mpath/path.hpp>

#include <atomic>
#include <concepts>
#include <cstdint>
#include <memory>
#include <span>

namespace mpath::inline v0 {

template <class G>
concept PriorityGroup = requires(G& g, const G& cg, path_index i) {
  typename G::path_type;
  typename G::selector_type;
  { cg.number() }
  noexcept->std::same_as<std::uint32_t>;
  { cg.size() }
  noexcept->std::same_as<std::size_t>;
  { g.path(i) }
  noexcept->std::same_as<typename G::path_type&>;
  { g.selector() }
  noexcept->std::same_as<typename G::selector_type&>;
  { cg.bypassed() }
  noexcept->std::same_as<bool>;
};

/// Thread safety: `bypassed` is read without the engine lock on the I/O path and written under it.
template <class Selector, Path P> class basic_priority_group {
public:
  using path_type = P;
  using selector_type = Selector;

  basic_priority_group() = default;
  basic_priority_group(const basic_priority_group&) = delete;
  basic_priority_group& operator=(const basic_priority_group&) = delete;

  /// 1-based, in table order; messages and status use it.
  std::uint32_t number() const noexcept { return number_; }
  std::size_t size() const noexcept { return size_; }
  P& path(path_index i) noexcept { return storage_[i]; }
  const P& path(path_index i) const noexcept { return storage_[i]; }
  std::span<P> paths() noexcept { return {storage_, size_}; }
  std::span<const P> paths() const noexcept { return {storage_, size_}; }
  Selector& selector() noexcept { return selector_; }
  const Selector& selector() const noexcept { return selector_; }
  bool bypassed() const noexcept { return bypassed_.load(std::memory_order_acquire); }
  void set_bypassed(bool b) noexcept { bypassed_.store(b, std::memory_order_release); }

  /// Construction only: the group's number, then storage for its paths.
  void set_number(std::uint32_t number) noexcept { number_ = number; }
  /// Paths Paths are constructed in place because they hold
  /// atomics and never move.
  void reserve_paths(std::size_t n) {
    storage_ = std::allocator<P>{}.allocate(n);
    capacity_ = n;
  }
  template <class... Args> P& emplace_path(Args&&... args) {
    P* p = std::construct_at(storage_ + size_, std::forward<Args>(args)...);
    ++size_;
    return *p;
  }
  ~basic_priority_group() {
    for (std::size_t i = 0; i < size_; ++i)
      std::destroy_at(storage_ + i);
    if (storage_)
      std::allocator<P>{}.deallocate(storage_, capacity_);
  }

private:
  Selector selector_;
  P* storage_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::uint32_t number_ = 0;
  std::atomic<bool> bypassed_{false};
};

} // namespace mpath::inline v0
