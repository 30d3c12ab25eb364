// GoogleTest assertions on absl::Status / absl::StatusOr, shared by every test.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

#define PARCOURS_CONCAT_INNER(a, b) a##b
#define PARCOURS_CONCAT(a, b) PARCOURS_CONCAT_INNER(a, b)

#define ASSERT_OK(expr)                                    \
  do {                                                     \
    const absl::Status parcours_status_ = (expr);          \
    ASSERT_TRUE(parcours_status_.ok()) << parcours_status_; \
  } while (0)

#define EXPECT_OK(expr)                                    \
  do {                                                     \
    const absl::Status parcours_status_ = (expr);          \
    EXPECT_TRUE(parcours_status_.ok()) << parcours_status_; \
  } while (0)

// ASSERT_OK_AND_ASSIGN(auto x, FunctionReturningStatusOr());
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  PARCOURS_ASSERT_OK_AND_ASSIGN_IMPL(PARCOURS_CONCAT(parcours_statusor_, __LINE__), lhs, rexpr)
#define PARCOURS_ASSERT_OK_AND_ASSIGN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                       \
  ASSERT_TRUE(statusor.ok()) << statusor.status();               \
  lhs = std::move(statusor).value()
