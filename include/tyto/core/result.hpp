// Result<T, E>: a value or a typed error, returned instead of throwing on every hot path.
// (C++20 has no std::expected; this is the small subset we use.)
#pragma once

#include <utility>
#include <variant>

#include "tyto/core/assert.hpp"

namespace tyto {

template <class E>
struct Failure {
  E error;
};

template <class E>
Failure(E) -> Failure<E>;

template <class T, class E>
class [[nodiscard]] Result {
 public:
  Result(T value) noexcept : state_(std::in_place_index<0>, std::move(value)) {}
  Result(Failure<E> failure) noexcept : state_(std::in_place_index<1>, std::move(failure.error)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & noexcept {
    TYTO_ASSERT(ok());
    return *std::get_if<0>(&state_);
  }
  const T& value() const& noexcept {
    TYTO_ASSERT(ok());
    return *std::get_if<0>(&state_);
  }
  const E& error() const noexcept {
    TYTO_ASSERT(!ok());
    return *std::get_if<1>(&state_);
  }

 private:
  std::variant<T, E> state_;
};

}  // namespace tyto
