#include "gateway/src/backends.h"

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "platform/tls.h"

namespace parcours::gateway {
namespace {

// `options.connections` channels, each with its own subchannels (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL:
// channels with the same target and arguments would otherwise share one connection);
// round_robin over whatever the name resolves to (headless Services in Kubernetes), mTLS when
// `<prefix>.tls_*` are set (platform/tls.h). No retry policy: see CallBackend.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ChannelsFor(const Config& config,
                                                                       const std::string& prefix,
                                                                       const std::string& default_address,
                                                                       const BackendOptions& options) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.connections; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
    args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = MakeChannel(config, prefix, default_address, std::move(args));
    if (!channel.ok()) return channel.status();
    channels.push_back(*std::move(channel));
  }
  return channels;
}

}  // namespace

absl::StatusOr<BackendOptions> BackendOptions::FromConfig(const Config& config) {
  BackendOptions o;
  auto deadline = config.GetDuration("backends.default_deadline", o.default_deadline);
  if (!deadline.ok()) return deadline.status();
  auto part = config.GetDuration("backends.part_deadline", o.part_deadline);
  if (!part.ok()) return part.status();
  auto max_bytes = config.GetInt("backends.max_message_bytes", o.max_message_bytes);
  if (!max_bytes.ok()) return max_bytes.status();
  auto attempts = config.GetInt("backends.retry_max_attempts", o.retry_max_attempts);
  if (!attempts.ok()) return attempts.status();
  auto backoff = config.GetDuration("backends.retry_initial_backoff", o.retry_initial_backoff);
  if (!backoff.ok()) return backoff.status();
  auto connections = config.GetInt("backends.connections", o.connections);
  if (!connections.ok()) return connections.status();
  if (*connections < 1 || *connections > 16) return absl::InvalidArgumentError("backends.connections: must be 1..16");
  if (*deadline <= absl::ZeroDuration()) return absl::InvalidArgumentError("backends.default_deadline: must be positive");
  if (*part <= absl::ZeroDuration()) return absl::InvalidArgumentError("backends.part_deadline: must be positive");
  if (*max_bytes <= 0 || *max_bytes > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError("backends.max_message_bytes: must be in (0, 1 GiB]");
  }
  if (*attempts < 1 || *attempts > 5) return absl::InvalidArgumentError("backends.retry_max_attempts: must be 1..5");
  if (*backoff <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("backends.retry_initial_backoff: must be positive");
  }
  o.default_deadline = *deadline;
  o.part_deadline = *part;
  o.max_message_bytes = static_cast<int>(*max_bytes);
  o.retry_max_attempts = static_cast<int>(*attempts);
  o.retry_initial_backoff = *backoff;
  o.connections = static_cast<int>(*connections);
  return o;
}

namespace internal {

absl::Duration RetryDelay(const BackendOptions& options, int attempt) {
  thread_local absl::BitGen gen;
  absl::Duration base = options.retry_initial_backoff * (int64_t{1} << std::min(attempt - 1, 10));
  base = std::min(base, absl::Seconds(2));
  return base * absl::Uniform(gen, 0.5, 1.5);
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<Backends>> Backends::Create(const Config& config) {
  auto options = BackendOptions::FromConfig(config);
  if (!options.ok()) return options.status();
  auto b = std::make_unique<Backends>();
  b->options = *options;
  auto referential = ChannelsFor(config, "backends.referential", "127.0.0.1:50051", *options);
  if (!referential.ok()) return referential.status();
  auto evaluation = ChannelsFor(config, "backends.evaluation", "127.0.0.1:50052", *options);
  if (!evaluation.ok()) return evaluation.status();
  auto cep = ChannelsFor(config, "backends.cep", "127.0.0.1:50053", *options);
  if (!cep.ok()) return cep.status();
  b->referential = BackendPool<referential::v1::ReferentialService>(*std::move(referential));
  b->evaluation = BackendPool<evaluation::v1::EvaluationService>(*std::move(evaluation));
  b->cep = BackendPool<cep::v1::CepService>(*std::move(cep));
  return b;
}

}  // namespace parcours::gateway
