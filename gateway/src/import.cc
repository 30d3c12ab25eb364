// OperatorService.ImportCases: the operator's client stream proxied to cep-svc's ImportCases,
// message by message with flow control: the next batch is read from the operator only once the
// previous one was written to cep-svc, so the gateway holds one batch per stream whatever the
// client's pace. cep-svc's response or status (with its row errors) comes back unchanged. The
// upstream call has the client's deadline, or none: an import lasts as long as its client sends.
#include "gateway/src/services.h"
#include "platform/errors.h"

namespace parcours::gateway {
namespace {

namespace cepv1 = ::parcours::cep::v1;

class ImportProxy final : public grpc::ServerReadReactor<cepv1::ImportCasesRequest> {
 public:
  ImportProxy(Gateway& gw, grpc::CallbackServerContext* ctx, cepv1::ImportCasesResponse* response)
      : gw_(gw), response_(response), upstream_(this) {
    static const std::string method = FullMethod("parcours.gateway.v1.OperatorService", "ImportCases");
    absl::StatusOr<Admission> admitted = gw_.Admit(*ctx, method, nullptr);
    if (!admitted.ok()) {
      Finish(ToGrpcStatus(admitted.status()));
      return;
    }
    admission_ = *std::move(admitted);
    client_ = gw_.StreamBackendContext(*ctx, admission_, admission_.caller.principal);
    // A stream is never retried: cep-svc is idempotent per row (external ids), but a replay is
    // the client's decision.
    gw_.backends().cep->async()->ImportCases(client_.get(), response_, &upstream_);
    // The hold keeps the upstream call's OnDone back while this side may still write to it.
    upstream_.AddHold();
    upstream_.StartCall();
    StartRead(&batch_);
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      upstream_.StartWrite(&batch_);
      return;
    }
    // The operator half-closed (or the call was cancelled, which cancels the upstream too).
    upstream_.StartWritesDone();
    upstream_.RemoveHold();
  }

  void OnDone() override { delete this; }

 private:
  class Upstream final : public grpc::ClientWriteReactor<cepv1::ImportCasesRequest> {
   public:
    explicit Upstream(ImportProxy* proxy) : proxy_(proxy) {}
    void OnWriteDone(bool ok) override { proxy_->UpstreamWriteDone(ok); }
    void OnDone(const grpc::Status& status) override { proxy_->UpstreamDone(status); }

   private:
    ImportProxy* proxy_;
  };

  void UpstreamWriteDone(bool ok) {
    if (ok) {
      StartRead(&batch_);
      return;
    }
    // cep-svc ended the call (its status follows in UpstreamDone): read nothing more.
    upstream_.RemoveHold();
  }

  void UpstreamDone(const grpc::Status& status) {
    gw_.Finished(admission_, nullptr, status);
    Finish(status);  // last: OnDone may delete this at once
  }

  Gateway& gw_;
  cepv1::ImportCasesResponse* response_;
  Admission admission_;
  std::unique_ptr<grpc::ClientContext> client_;
  cepv1::ImportCasesRequest batch_;
  Upstream upstream_;
};

}  // namespace

grpc::ServerReadReactor<cepv1::ImportCasesRequest>* ImportCases(Gateway& gateway, grpc::CallbackServerContext* ctx,
                                                                 cepv1::ImportCasesResponse* response) {
  return new ImportProxy(gateway, ctx, response);
}

}  // namespace parcours::gateway
