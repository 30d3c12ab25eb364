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

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "platform/errors.h"

namespace parcours {
namespace {

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
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &md_len, EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("SHA-256 failed");
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), md_len));
}

}  // namespace

absl::StatusOr<std::optional<IdempotentHit>> LookupRequestId(db::Tx& tx, std::string_view method,
                                                             std::string_view request_id,
                                                             const google::protobuf::Message& request) {
  if (request_id.empty()) return std::optional<IdempotentHit>();
  auto hash = RequestHash(request);
  if (!hash.ok()) return hash.status();
  auto rows =
      tx.Query("SELECT resource_name, request_hash FROM idempotency_keys WHERE method = ? AND request_id = ?",
               {std::string(method), std::string(request_id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<IdempotentHit>();
  const db::Row& row = rows->front();
  if (row.Str(1) != *hash) {
    return InvalidArgument("request_id", absl::StrCat("request_id \"", std::string(request_id),
                                                      "\" was already used for a different request"));
  }
  return std::optional<IdempotentHit>(IdempotentHit{row.Str(0)});
}

absl::Status RecordRequestId(db::Tx& tx, std::string_view method, std::string_view request_id,
                             const google::protobuf::Message& request, std::string_view resource_name,
                             int64_t now_unix_micros) {
  if (request_id.empty()) return absl::OkStatus();
  auto hash = RequestHash(request);
  if (!hash.ok()) return hash.status();
  auto n = tx.Exec(
      "INSERT INTO idempotency_keys (method, request_id, resource_name, request_hash, created_at) "
      "VALUES (?, ?, ?, ?, ?)",
      {std::string(method), std::string(request_id), std::string(resource_name), *hash, now_unix_micros});
  return n.status();
}

}  // namespace parcours
