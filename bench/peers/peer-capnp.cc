// SPDX-License-Identifier: LGPL-2.1-or-later

// peer-capnp: Cap'n Proto RPC (Debian 0.9) through EzRpc, single-threaded
// KJ event loops on both sides. The client hands the server a Callback
// capability with each `cb` call and the server calls its `ping` before
// answering: a callback in the object-capability style. `hold {n}` makes
// the server call `ping` n times on a Callback whose answers never come;
// the server keeps the promises. unix: and TCP; EzRpc has no TLS.

#include "peers-util.h"

#include <capnp/ez-rpc.h>
#include <kj/async.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/timer.h>

#include "bench.capnp.h"

#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

// ------------------------------------------------------------------------
// Server

class BenchImpl final : public Bench::Server
{
public:
  kj::Promise<void>
  echo (EchoContext context) override
  {
    context.getResults ().setSeq (context.getParams ().getSeq ());
    return kj::READY_NOW;
  }

  kj::Promise<void>
  cb (CbContext context) override
  {
    auto req = context.getParams ().getCallback ().pingRequest ();

    req.setSeq (context.getParams ().getSeq ());
    return req.send ().then ([context] (capnp::Response<Callback::PingResults> &&r) mutable {
      context.getResults ().setSeq (r.getSeq ());
    });
  }

  kj::Promise<void>
  hold (HoldContext context) override
  {
    auto callback = context.getParams ().getCallback ();
    uint32_t n = context.getParams ().getN ();

    for (uint32_t i = 0; i < n && i < 1000000; i++)
      {
        auto req = callback.pingRequest ();

        req.setSeq (i);
        held_.add (req.send ().ignoreResult ().eagerlyEvaluate ([] (kj::Exception &&) {}));
      }
    return kj::READY_NOW;
  }

private:
  kj::Vector<kj::Promise<void>> held_;
};

static int
run_server (const PeerArgs *a)
{
  std::string bind;

  if (a->transport == PEER_TRANSPORT_TLS)
    {
      fprintf (stderr, "peer-capnp: no TLS in EzRpc\n");
      return 3;
    }
  if (a->transport == PEER_TRANSPORT_UNIX)
    {
      unlink (a->address);
      bind = std::string ("unix:") + a->address;
    }
  else
    bind = a->address;
  capnp::EzRpcServer server (kj::heap<BenchImpl> (), bind);
  auto &ws = server.getWaitScope ();
  unsigned port = server.getPort ().wait (ws);

  if (a->transport == PEER_TRANSPORT_UNIX)
    peer_emit ("READY %s", a->address);
  else
    peer_emit ("READY 127.0.0.1:%u", port);
  peer_server_watch_stdin ();
  kj::NEVER_DONE.wait (ws);
  return 0;
}

// ------------------------------------------------------------------------
// Client

class PingImpl final : public Callback::Server
{
public:
  kj::Promise<void>
  ping (PingContext context) override
  {
    context.getResults ().setSeq (context.getParams ().getSeq ());
    return kj::READY_NOW;
  }
};

// Never answers; counts, and says when it has @want.
class HoldImpl final : public Callback::Server
{
public:
  HoldImpl (unsigned want, kj::Own<kj::PromiseFulfiller<void>> fulfiller)
    : want_ (want), fulfiller_ (kj::mv (fulfiller)) {}

  kj::Promise<void>
  ping (PingContext context) override
  {
    if (++held_ >= want_)
      fulfiller_->fulfill ();
    return kj::NEVER_DONE;
  }

  unsigned held_ = 0;

private:
  unsigned                            want_;
  kj::Own<kj::PromiseFulfiller<void>> fulfiller_;
};

static std::string
client_address (const PeerArgs *a)
{
  return a->transport == PEER_TRANSPORT_UNIX ? std::string ("unix:") + a->address : std::string (a->address);
}

struct Conn
{
  std::unique_ptr<capnp::EzRpcClient> client;
  Bench::Client                       bench = nullptr;
};

static std::unique_ptr<Conn>
connect_checked (const PeerArgs *a)
{
  auto c = std::make_unique<Conn> ();

  c->client = std::make_unique<capnp::EzRpcClient> (client_address (a));
  c->bench = c->client->getMain<Bench> ();
  KJ_IF_MAYBE (e, kj::runCatchingExceptions ([&] () {
                 auto req = c->bench.echoRequest ();
                 req.setSeq (0);
                 req.send ().wait (c->client->getWaitScope ());
               }))
    {
      peer_emit ("ERROR first call: %s", e->getDescription ().cStr ());
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
  auto &ws = c.client->getWaitScope ();
  Callback::Client ping = kj::heap<PingImpl> ();

  for (int i = 0; i < a->warmup + a->calls; i++)
    {
      int64_t t0 = peer_now_ns ();

      if (with_callback)
        {
          auto req = c.bench.cbRequest ();

          req.setSeq (i);
          req.setCallback (ping);
          req.send ().wait (ws);
        }
      else
        {
          auto req = c.bench.echoRequest ();

          req.setSeq (i);
          req.send ().wait (ws);
        }
      if (i >= a->warmup)
        ns[i - a->warmup] = peer_now_ns () - t0;
    }
  peer_emit_latency (workload, ns.data (), ns.size (), 0, nullptr);
}

struct Throughput
{
  int64_t  measure_from, end;
  uint64_t calls = 0;
  int64_t  seq = 0;
};

static kj::Promise<void>
call_loop (Bench::Client &bench,
           Throughput    &tp)
{
  auto req = bench.echoRequest ();

  req.setSeq (tp.seq++);
  return req.send ().then ([&bench, &tp] (capnp::Response<Bench::EchoResults> &&) -> kj::Promise<void> {
    int64_t now = peer_now_ns ();

    if (now >= tp.measure_from && now < tp.end)
      tp.calls++;
    if (now >= tp.end)
      return kj::READY_NOW;
    return call_loop (bench, tp);
  });
}

static void
throughput (const PeerArgs                     *a,
            std::vector<std::unique_ptr<Conn>> &conns,
            int                                 depth,
            const char                         *workload)
{
  Throughput tp;
  kj::Vector<kj::Promise<void>> loops;
  auto &ws = conns[0]->client->getWaitScope ();

  tp.measure_from = peer_now_ns () + (int64_t) (a->warmup_seconds * 1e9);
  tp.end = tp.measure_from + (int64_t) (a->seconds * 1e9);
  for (auto &c : conns)
    for (int i = 0; i < depth; i++)
      loops.add (call_loop (c->bench, tp));
  kj::joinPromises (loops.releaseAsArray ())
    .exclusiveJoin (conns[0]->client->getIoProvider ().getTimer ().afterDelay (60 * kj::SECONDS).then ([workload] () {
      peer_emit ("ERROR %s: calls still outstanding after 60 s", workload);
      _exit (1);
    }))
    .wait (ws);
  peer_emit_rate (workload, tp.calls, (tp.end - tp.measure_from) / 1e9, 0, nullptr);
}

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
      kj::NEVER_DONE.wait (conns[0]->client->getWaitScope ());
    }
  if (peer_args_has (a, "pending"))
    {
      auto c = connect_checked (a);
      auto &ws = c->client->getWaitScope ();
      auto paf = kj::newPromiseAndFulfiller<void> ();
      auto impl = kj::heap<HoldImpl> ((unsigned) a->pending, kj::mv (paf.fulfiller));
      HoldImpl *holder = impl.get ();
      Callback::Client cap = kj::mv (impl);

      peer_emit ("CONNECTED");
      peer_wait_stdin_line ();
      auto req = c->bench.holdRequest ();
      req.setN ((uint32_t) a->pending);
      req.setCallback (cap);
      auto sent = req.send ().ignoreResult ().eagerlyEvaluate ([] (kj::Exception &&) {});
      paf.promise.exclusiveJoin (c->client->getIoProvider ().getTimer ().afterDelay (30 * kj::SECONDS)).wait (ws);
      peer_emit ("HOLDING pending=%u", holder->held_);
      kj::NEVER_DONE.wait (ws);
    }

  {
    std::vector<std::unique_ptr<Conn>> one;

    one.push_back (connect_checked (a));
    if (peer_args_has (a, "seq"))
      latency (a, *one[0], false, "seq");
    if (peer_args_has (a, "cb"))
      latency (a, *one[0], true, "cb");
    if (peer_args_has (a, "inflight"))
      throughput (a, one, a->depth, "inflight");
    if (peer_args_has (a, "conns"))
      {
        std::vector<std::unique_ptr<Conn>> conns;

        for (int i = 0; i < a->conns; i++)
          conns.push_back (connect_checked (a));
        throughput (a, conns, 1, "conns");
      }
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
