// request_id idempotency (AIP-155).
//
// Usage, inside the create's transaction:
//   auto hit = LookupRequestId(tx, method, req.request_id(), req);
//   if (!hit.ok()) return hit.status();               // INVALID_ARGUMENT: key reused
//   if (*hit) -> return the resource named (*hit)->resource_name (read it again)
//   ... create ...
//   RecordRequestId(tx, method, req.request_id(), req, name, now);
//
// An empty request_id means "no idempotency requested": Lookup returns nullopt and Record does
// nothing.
//
// Two concurrent creates with the same key: both lookups miss, both create, and the second
// RecordRequestId fails with ALREADY_EXISTS (primary key (method, request_id)), which rolls its
// transaction back, create included. It is left to the caller: typically retry the whole
// transaction once, whose lookup now finds the winner's row and returns its resource.
#include "platform/idempotency.h"

#include <openssl/evp.h>

#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "platform/db/bulk.h"
#include "platform/errors.h"

namespace parcours {
namespace {

constexpr size_t kMethodColumnSize = 128;  // idempotency_keys.method VARCHAR(128)

std::string HexSha256(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &md_len, EVP_sha256(), nullptr) != 1) return "";
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), md_len));
}

// Hex SHA-256 of the message serialized deterministically (map entries sorted), so the same
// request always hashes the same within one binary. Every field counts, unknown ones included.
absl::StatusOr<std::string> RequestHash(const google::protobuf::Message& request) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    if (!request.SerializeToCodedStream(&coded)) {
      return absl::InternalError(
          absl::StrCat("cannot serialize ", request.GetTypeName(), " for request_id hash"));
    }
  }
  std::string hash = HexSha256(bytes);
  if (hash.empty()) return absl::InternalError("SHA-256 failed");
  return hash;
}

}  // namespace

std::string CallerScopedMethod(std::string_view method, const Principal& caller) {
  const absl::string_view name(method.data(), method.size());  // Debian's absl: not std::string_view
  std::string scoped = absl::StrCat(name, " ", caller.ToString());
  if (scoped.size() <= kMethodColumnSize) return scoped;
  // A principal id may be 128 characters: then its hash ('#' and hex, never a principal's ':').
  return absl::StrCat(name, " #", HexSha256(caller.ToString()));
}

absl::StatusOr<std::vector<absl::StatusOr<std::optional<IdempotentHit>>>> LookupRequestIds(
    db::Tx& tx, std::string_view method, const std::vector<RequestKey>& keys) {
  std::vector<absl::StatusOr<std::optional<IdempotentHit>>> out(keys.size(), std::optional<IdempotentHit>());
  std::vector<std::string> ids;
  for (const RequestKey& k : keys) {
    if (!k.request_id.empty()) ids.push_back(k.request_id);
  }
  if (ids.empty()) return out;
  std::map<std::string, std::pair<std::string, std::string>> stored;  // request_id -> (name, hash)
  absl::Status st = db::SelectIn(
      tx, "SELECT request_id, resource_name, request_hash FROM idempotency_keys WHERE method = ? AND request_id IN",
      {std::string(method)}, ids, [&](const db::Row& row) { stored[row.Str(0)] = {row.Str(1), row.Str(2)}; });
  if (!st.ok()) return st;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = stored.find(keys[i].request_id);
    if (keys[i].request_id.empty() || it == stored.end()) continue;
    auto hash = RequestHash(*keys[i].request);
    if (!hash.ok()) return hash.status();
    if (it->second.second != *hash) {
      out[i] = InvalidArgument("request_id", absl::StrCat("request_id \"", keys[i].request_id,
                                                          "\" was already used for a different request"));
    } else {
      out[i] = std::optional<IdempotentHit>(IdempotentHit{it->second.first});
    }
  }
  return out;
}

absl::Status RecordRequestIds(db::Tx& tx, std::string_view method, const std::vector<RequestKey>& keys,
                              const std::vector<std::string>& resource_names, int64_t now_unix_micros) {
  if (resource_names.size() != keys.size()) return absl::InternalError("RecordRequestIds: one name per key");
  std::vector<db::Params> rows;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].request_id.empty()) continue;
    auto hash = RequestHash(*keys[i].request);
    if (!hash.ok()) return hash.status();
    rows.push_back({std::string(method), keys[i].request_id, resource_names[i], *hash, now_unix_micros});
  }
  if (rows.empty()) return absl::OkStatus();
  return db::InsertRows(tx, "INSERT INTO idempotency_keys (method, request_id, resource_name, request_hash, created_at)",
                        "(?, ?, ?, ?, ?)", rows)
      .status();
}

absl::StatusOr<std::optional<IdempotentHit>> LookupRequestId(db::Tx& tx, std::string_view method,
                                                             std::string_view request_id,
                                                             const google::protobuf::Message& request) {
  auto hits = LookupRequestIds(tx, method, {RequestKey{std::string(request_id), &request}});
  if (!hits.ok()) return hits.status();
  return std::move(hits->front());
}

absl::Status RecordRequestId(db::Tx& tx, std::string_view method, std::string_view request_id,
                             const google::protobuf::Message& request, std::string_view resource_name,
                             int64_t now_unix_micros) {
  return RecordRequestIds(tx, method, {RequestKey{std::string(request_id), &request}}, {std::string(resource_name)},
                          now_unix_micros);
}

}  // namespace parcours
