// request_id idempotency for creates (AIP-155), stored in the service's own database, in the
// same transaction as the create, so a retried create returns the first result.
//
// Each service's first migration creates:
//   CREATE TABLE idempotency_keys (
//     method VARCHAR(128) NOT NULL, request_id VARCHAR(64) NOT NULL,
//     resource_name VARCHAR(512) NOT NULL, request_hash VARCHAR(64) NOT NULL,
//     created_at BIGINT NOT NULL, PRIMARY KEY (method, request_id));
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "platform/db/db.h"
#include "platform/principal.h"

namespace parcours {

struct IdempotentHit {
  std::string resource_name;
};

// Looks up (method, request_id). When found with a different request body, fails with
// INVALID_ARGUMENT on request_id (a key reused for another request); when found with the same
// body, returns the resource name created the first time.
absl::StatusOr<std::optional<IdempotentHit>> LookupRequestId(db::Tx& tx, std::string_view method,
                                                             std::string_view request_id,
                                                             const google::protobuf::Message& request);
// Records the key with the created resource's name (call inside the create's transaction).
absl::Status RecordRequestId(db::Tx& tx, std::string_view method, std::string_view request_id,
                             const google::protobuf::Message& request, std::string_view resource_name,
                             int64_t now_unix_micros);

// Batches (a group of creates written in one transaction): the same, for many keys of one method
// in one statement each way. `request` is borrowed for the call.
struct RequestKey {
  std::string request_id;  // empty: no idempotency requested (always nullopt, never recorded)
  const google::protobuf::Message* request = nullptr;
};
// One result per key, in order: nullopt, the hit, or INVALID_ARGUMENT (key reused for another body).
absl::StatusOr<std::vector<absl::StatusOr<std::optional<IdempotentHit>>>> LookupRequestIds(
    db::Tx& tx, std::string_view method, const std::vector<RequestKey>& keys);
// Records every key with its resource name (resource_names[i] for keys[i]).
absl::Status RecordRequestIds(db::Tx& tx, std::string_view method, const std::vector<RequestKey>& keys,
                              const std::vector<std::string>& resource_names, int64_t now_unix_micros);

// The `method` key of a create whose request ids are the caller's own: another caller reusing
// (or guessing) one neither gets the first caller's resource back nor learns that the id is
// taken. "OpenCase operator:ft"; a hash of the principal when that would not fit the column.
std::string CallerScopedMethod(std::string_view method, const Principal& caller);

namespace internal {
inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

// Runs `attempt`, a create keyed by `request_id` (its transaction looks the key up first), and
// once more when it lost a race to a concurrent attempt of the same request (a client or the
// gateway retrying while the first attempt still ran): that attempt's key insert or row update
// makes this one ALREADY_EXISTS or ABORTED, and the second run's lookup answers with the first
// attempt's resource. Without a request id there is nothing to find: the error stands.
template <typename Attempt>
auto CreateOnceRacing(std::string_view request_id, const Attempt& attempt) -> decltype(attempt()) {
  auto result = attempt();
  const absl::Status& status = internal::StatusOf(result);
  if (!request_id.empty() && (absl::IsAlreadyExists(status) || absl::IsAborted(status))) return attempt();
  return result;
}

}  // namespace parcours
