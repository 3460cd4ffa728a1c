#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include "im/v1/gateway.grpc.pb.h"

namespace im::gateway {

class GatewayServiceImpl;

// The gateway's end of one GatewayService.PushStream (one per logic node): each batch read is
// delivered like a Push call (GatewayServiceImpl::DeliverBatch) and answered by a reply with its
// id, the replies written one at a time in the order the batches finished. At most
// `kMaxBatchesInFlight` batches are read and not yet answered: past that the stream stops reading,
// and HTTP/2 flow control holds logic back. Deleted by gRPC's OnDone; a batch that finishes later
// finds no stream and is dropped (logic treats the stream's end as the batch's failure).
class GatewayPushStream final
    : public grpc::ServerBidiReactor<im::v1::PushBatchRequest, im::v1::PushBatchReply> {
 public:
  static constexpr size_t kMaxBatchesInFlight = 64;

  GatewayPushStream(GatewayServiceImpl* service, grpc::CallbackServerContext* context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  // What outlives the stream: pending batches hold it.
  struct Shared {
    std::mutex mutex;
    GatewayPushStream* stream = nullptr;  // guarded by mutex; null once the stream is done
  };

  void Answer(std::unique_ptr<im::v1::PushBatchReply> reply, const grpc::Status& status);
  // Both with shared_->mutex held.
  void ReadMoreLocked();
  void WriteOrFinishLocked();

  GatewayServiceImpl* service_;
  grpc::CallbackServerContext* context_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  im::v1::PushBatchRequest incoming_;
  std::deque<std::unique_ptr<im::v1::PushBatchReply>> answered_;  // not yet written
  std::unique_ptr<im::v1::PushBatchReply> writing_;               // the write in flight
  size_t in_flight_ = 0;  // batches read and not yet answered
  bool reading_ = false;
  bool reads_ended_ = false;
  bool finished_ = false;
  grpc::Status refusal_;  // a batch refused (bad frame): the stream ends with it
};

}  // namespace im::gateway
