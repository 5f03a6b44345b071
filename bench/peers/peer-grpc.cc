// SPDX-License-Identifier: LGPL-2.1-or-later

// peer-grpc: gRPC C++ (Debian 1.51), the server on the callback API.
// `Echo` is unary. A call with a callback is a bidirectional stream per
// call (gRPC has no callbacks): the client sends CALL, the server sends
// CALLBACK, the client answers CALLBACK_REPLY, the server sends RESULT and
// finishes. Pending callbacks: the client opens n such streams and never
// answers the CALLBACK; the server's reactors wait. The client uses the
// synchronous API for sequential calls (its lowest-latency path) and the
// callback API for calls in flight. One channel per connection (a local
// subchannel pool, or gRPC would share one connection). unix:, TCP and
// TLS (SslServerCredentials; the client trusts the orchestrator's
// certificate).

#include "peers-util.h"

#include <grpcpp/grpcpp.h>

#include "bench.grpc.pb.h"

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using tetherbench::Bench;
using tetherbench::Msg;

static std::string
read_file (const char *path)
{
  std::ifstream in (path);
  std::stringstream ss;

  ss << in.rdbuf ();
  return ss.str ();
}

// ------------------------------------------------------------------------
// Server

class CallbackReactor : public grpc::ServerBidiReactor<Msg, Msg>
{
public:
  CallbackReactor () { StartRead (&in_); }

  void
  OnReadDone (bool ok) override
  {
    if (!ok)
      {
        Finish (grpc::Status (grpc::StatusCode::CANCELLED, "no message"));
        return;
      }
    if (state_ == 0)
      {
        out_.set_kind (Msg::CALLBACK);
        out_.set_seq (in_.seq ());
        state_ = 1;
        StartWrite (&out_);
      }
    else
      {
        out_.set_kind (Msg::RESULT);
        out_.set_seq (in_.seq ());
        state_ = 3;
        StartWriteAndFinish (&out_, grpc::WriteOptions (), grpc::Status::OK);
      }
  }

  void
  OnWriteDone (bool ok) override
  {
    if (!ok)
      {
        Finish (grpc::Status (grpc::StatusCode::CANCELLED, "write failed"));
        return;
      }
    if (state_ == 1)
      {
        state_ = 2;
        StartRead (&in_);
      }
  }

  void OnDone () override { delete this; }

private:
  Msg in_, out_;
  int state_ = 0;
};

class BenchService final : public Bench::CallbackService
{
  grpc::ServerUnaryReactor *
  Echo (grpc::CallbackServerContext *context,
        const Msg                   *request,
        Msg                         *reply) override
  {
    *reply = *request;
    auto *reactor = context->DefaultReactor ();
    reactor->Finish (grpc::Status::OK);
    return reactor;
  }

  grpc::ServerBidiReactor<Msg, Msg> *
  Callback (grpc::CallbackServerContext *context) override
  {
    return new CallbackReactor ();
  }
};

static int
run_server (const PeerArgs *a)
{
  BenchService service;
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials ();
  std::string listen;
  int port = 0;

  if (a->transport == PEER_TRANSPORT_UNIX)
    {
      unlink (a->address);
      listen = std::string ("unix:") + a->address;
    }
  else
    {
      char host[64];
      int want = 0;

      if (!peer_split_hostport (a->address, host, sizeof host, &want))
        return 2;
      listen = std::string (host) + ":" + std::to_string (want);
      if (a->transport == PEER_TRANSPORT_TLS)
        {
          grpc::SslServerCredentialsOptions options;

          options.pem_key_cert_pairs.push_back ({ read_file (a->key), read_file (a->cert) });
          creds = grpc::SslServerCredentials (options);
        }
    }
  builder.AddListeningPort (listen, creds, a->transport == PEER_TRANSPORT_UNIX ? nullptr : &port);
  builder.RegisterService (&service);
  // Every pending callback is a stream: let them all be open at once.
  builder.AddChannelArgument (GRPC_ARG_MAX_CONCURRENT_STREAMS, 1000000);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart ();
  if (!server)
    {
      fprintf (stderr, "peer-grpc: cannot listen on %s\n", listen.c_str ());
      return 1;
    }
  if (a->transport == PEER_TRANSPORT_UNIX)
    peer_emit ("READY %s", a->address);
  else
    peer_emit ("READY 127.0.0.1:%d", port);
  peer_server_watch_stdin ();
  server->Wait ();
  return 0;
}

// ------------------------------------------------------------------------
// Client

static std::shared_ptr<grpc::Channel>
make_channel (const PeerArgs *a)
{
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials ();
  std::string target;

  // One channel, one connection: no sharing of subchannels between them.
  args.SetInt (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (a->transport == PEER_TRANSPORT_UNIX)
    target = std::string ("unix:") + a->address;
  else
    {
      target = std::string ("ipv4:") + a->address;
      if (a->transport == PEER_TRANSPORT_TLS)
        {
          grpc::SslCredentialsOptions options;

          options.pem_root_certs = read_file (a->ca);
          creds = grpc::SslCredentials (options);
          args.SetSslTargetNameOverride ("127.0.0.1");
        }
    }
  return grpc::CreateCustomChannel (target, creds, args);
}

struct Conn
{
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Bench::Stub>   stub;
};

static bool
echo_once (Conn     &c,
           int64_t   seq,
           std::string *error)
{
  grpc::ClientContext ctx;
  Msg req, resp;

  ctx.set_deadline (std::chrono::system_clock::now () + std::chrono::seconds (10));
  req.set_seq (seq);
  grpc::Status st = c.stub->Echo (&ctx, req, &resp);
  if (!st.ok () && error != nullptr)
    *error = st.error_message ();
  return st.ok ();
}

static bool
callback_once (Conn        &c,
               int64_t      seq,
               std::string *error)
{
  grpc::ClientContext ctx;
  Msg msg;

  ctx.set_deadline (std::chrono::system_clock::now () + std::chrono::seconds (10));
  auto stream = c.stub->Callback (&ctx);
  msg.set_kind (Msg::CALL);
  msg.set_seq (seq);
  if (!stream->Write (msg) || !stream->Read (&msg) || msg.kind () != Msg::CALLBACK)
    {
      *error = "no callback";
      stream->Finish ();
      return false;
    }
  msg.set_kind (Msg::CALLBACK_REPLY);
  if (!stream->Write (msg) || !stream->Read (&msg) || msg.kind () != Msg::RESULT)
    {
      *error = "no result";
      stream->Finish ();
      return false;
    }
  grpc::Status st = stream->Finish ();
  if (!st.ok ())
    *error = st.error_message ();
  return st.ok ();
}

static std::unique_ptr<Conn>
connect_checked (const PeerArgs *a)
{
  auto c = std::make_unique<Conn> ();
  std::string error;

  c->channel = make_channel (a);
  if (!c->channel->WaitForConnected (std::chrono::system_clock::now () + std::chrono::seconds (10)))
    {
      peer_emit ("ERROR connect: not connected in 10 s");
      exit (1);
    }
  c->stub = Bench::NewStub (c->channel);
  if (!echo_once (*c, 0, &error))
    {
      peer_emit ("ERROR first call: %s", error.c_str ());
      exit (1);
    }
  return c;
}

static void
latency (const PeerArgs *a,
         Conn           &c,
         bool            with_callback,
         const char     *workload)
{
  std::vector<int64_t> ns (a->calls);
  unsigned errors = 0;
  std::string last_error;

  for (int i = 0; i < a->warmup + a->calls; i++)
    {
      int64_t t0 = peer_now_ns ();
      std::string error;
      bool ok = with_callback ? callback_once (c, i, &error) : echo_once (c, i, &error);

      if (!ok)
        {
          errors++;
          last_error = error;
        }
      if (i >= a->warmup)
        ns[i - a->warmup] = peer_now_ns () - t0;
    }
  peer_emit_latency (workload, ns.data (), ns.size (), errors, errors ? last_error.c_str () : nullptr);
}

// Calls in flight with the callback API: each answer starts the next call.
class Throughput
{
public:
  Throughput (const PeerArgs *a)
  {
    measure_from_ = peer_now_ns () + (int64_t) (a->warmup_seconds * 1e9);
    end_ = measure_from_ + (int64_t) (a->seconds * 1e9);
  }

  struct Slot
  {
    Throughput                         *tp;
    Bench::Stub                        *stub;
    Msg                                 req, resp;
    std::unique_ptr<grpc::ClientContext> ctx;
  };

  void
  start (Slot *s)
  {
    {
      std::lock_guard<std::mutex> lock (mu_);
      outstanding_++;
    }
    s->ctx = std::make_unique<grpc::ClientContext> ();
    s->req.set_seq (seq_++);
    s->stub->async ()->Echo (s->ctx.get (), &s->req, &s->resp, [this, s] (grpc::Status st) { done (s, st); });
  }

  void
  done (Slot        *s,
        grpc::Status st)
  {
    int64_t now = peer_now_ns ();
    bool again;

    {
      std::lock_guard<std::mutex> lock (mu_);
      outstanding_--;
      if (!st.ok ())
        {
          errors_++;
          last_error_ = st.error_message ();
        }
      else if (now >= measure_from_ && now < end_)
        calls_++;
      again = now < end_;
      if (!again && outstanding_ == 0)
        cv_.notify_all ();
    }
    if (again)
      start (s);
  }

  void
  run (std::vector<std::unique_ptr<Conn>> &conns,
       int                                 depth,
       const char                         *workload)
  {
    std::vector<Slot> slots (conns.size () * depth);

    for (size_t i = 0; i < slots.size (); i++)
      {
        slots[i].tp = this;
        slots[i].stub = conns[i / depth]->stub.get ();
        start (&slots[i]);
      }
    std::unique_lock<std::mutex> lock (mu_);
    if (!cv_.wait_for (lock, std::chrono::seconds (60), [this] { return outstanding_ == 0; }))
      {
        peer_emit ("ERROR %s: %d calls still outstanding", workload, outstanding_);
        _exit (1);
      }
    peer_emit_rate (workload, calls_, (end_ - measure_from_) / 1e9, errors_,
                    errors_ ? last_error_.c_str () : nullptr);
  }

private:
  std::mutex              mu_;
  std::condition_variable cv_;
  int64_t                 measure_from_, end_;
  std::atomic<int64_t>    seq_ { 0 };
  uint64_t                calls_ = 0;
  unsigned                errors_ = 0;
  std::string             last_error_;
  int                     outstanding_ = 0;
};

static int
run_client (const PeerArgs *a)
{
  if (peer_args_has (a, "idle"))
    {
      std::vector<std::unique_ptr<Conn>> conns;

      peer_emit ("CONNECTED");
      peer_wait_stdin_line ();
      for (int i = 0; i < a->conns; i++)
        conns.push_back (connect_checked (a));
      peer_emit ("HOLDING conns=%d", a->conns);
      for (;;)
        pause ();
    }
  if (peer_args_has (a, "pending"))
    {
      auto c = connect_checked (a);
      std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
      std::vector<std::unique_ptr<grpc::ClientReaderWriter<Msg, Msg>>> streams;
      int held = 0;
      int64_t end;

      peer_emit ("CONNECTED");
      peer_wait_stdin_line ();
      end = peer_now_ns () + 30 * (int64_t) 1000000000;
      for (int i = 0; i < a->pending && peer_now_ns () < end; i++)
        {
          Msg msg;

          contexts.push_back (std::make_unique<grpc::ClientContext> ());
          contexts.back ()->set_deadline (std::chrono::system_clock::now () + std::chrono::seconds (120));
          streams.push_back (c->stub->Callback (contexts.back ().get ()));
          msg.set_kind (Msg::CALL);
          msg.set_seq (i);
          // Read the CALLBACK and never answer it.
          if (streams.back ()->Write (msg) && streams.back ()->Read (&msg) && msg.kind () == Msg::CALLBACK)
            held++;
        }
      peer_emit ("HOLDING pending=%d", held);
      for (;;)
        pause ();
    }

  {
    std::vector<std::unique_ptr<Conn>> one;

    one.push_back (connect_checked (a));
    if (peer_args_has (a, "seq"))
      latency (a, *one[0], false, "seq");
    if (peer_args_has (a, "cb"))
      latency (a, *one[0], true, "cb");
    if (peer_args_has (a, "inflight"))
      {
        Throughput tp (a);

        tp.run (one, a->depth, "inflight");
      }
  }
  if (peer_args_has (a, "conns"))
    {
      std::vector<std::unique_ptr<Conn>> conns;

      for (int i = 0; i < a->conns; i++)
        conns.push_back (connect_checked (a));
      Throughput tp (a);
      tp.run (conns, 1, "conns");
    }
  fflush (stdout);
  _exit (0);
}

int
main (int    argc,
      char **argv)
{
  PeerArgs a;

  peer_common_init ();
  peer_args_parse (&a, argc, argv);
  return a.is_server ? run_server (&a) : run_client (&a);
}
