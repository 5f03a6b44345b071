/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* service.vala: a Tether service in Vala, shaped like the demo service.
 *
 *   valac --pkg tether-1 service.vala && ./service unix:/tmp/tether-demo.sock
 *
 * Methods, open to authenticated peers (on a Unix socket: any local user
 * the kernel names):
 *
 *   work {steps, delay_ms}  calls the client's progress {step, of} once per
 *                           step, delay_ms apart; answers {done: steps}
 *   ask {question}          asks the client's confirm {question}; answers
 *                           what the client's user said
 *
 * Its first line on stdout is `listening on URI`; SIGINT and SIGTERM stop
 * it cleanly. docs/vala.md walks through it. */

/* snippet: handlers */
int64 number (Variant? params, string name, int64 fallback, int64 maximum) throws Tether.RemoteError
{
  var value = params != null ? params.lookup_value (name, null) : null;

  if (value == null)
    return fallback;
  if (!value.is_of_type (VariantType.INT64) ||
      value.get_int64 () < 0 || value.get_int64 () > maximum)
    throw new Tether.RemoteError.INVALID_PARAMS ("%s must be an integer from 0 to %" + int64.FORMAT,
                                                 name, maximum);
  return value.get_int64 ();
}

/* Returns after @ms, or throws IOError.CANCELLED as soon as @cancellable fires. */
async void delay (uint ms, Cancellable cancellable) throws IOError
{
  uint timer = 0;
  ulong handler = 0;

  timer = Timeout.add (ms, () => {
    timer = 0;
    delay.callback ();
    return Source.REMOVE;
  });
  /* Tether cancels an invocation's cancellable on its own context; resume
   * from an idle, so that disconnect () is not called from inside it. */
  handler = cancellable.connect (() => {
    if (timer != 0)
      Source.remove (timer);
    timer = 0;
    Idle.add (delay.callback);
  });
  yield;
  cancellable.disconnect (handler);
  cancellable.set_error_if_cancelled ();
}

async void work (Tether.Invocation invocation)
{
  try
    {
      var steps = number (invocation.get_parameters (), "steps", 3, 1000);
      var delay_ms = number (invocation.get_parameters (), "delay_ms", 100, 60000);

      for (int64 step = 1; step <= steps; step++)
        {
          /* The client cancelled, its deadline passed, or it left: the
           * cancellable fires, and the callback in flight fails with it. */
          yield delay ((uint) delay_ms, invocation.get_cancellable ());
          var progress = new VariantDict ();
          progress.insert ("step", "x", step);
          progress.insert ("of", "x", steps);
          yield invocation.call_peer_async ("progress", progress.end ());
        }
      var done = new VariantDict ();
      done.insert ("done", "x", steps);
      invocation.return_value (done.end ());
    }
  catch (GLib.Error e)
    {
      /* A Tether.RemoteError keeps its code; IOError.CANCELLED is -32002. */
      invocation.return_gerror (e);
    }
}

async void ask (Tether.Invocation invocation)
{
  var params = invocation.get_parameters ();
  var question = params != null ? params.lookup_value ("question", VariantType.STRING) : null;

  if (question == null)
    {
      invocation.return_error_literal (Tether.RemoteError.INVALID_PARAMS,
                                       "question must be a string");
      return;
    }
  var confirm = new VariantDict ();
  confirm.insert_value ("question", question);
  try
    {
      invocation.return_value (yield invocation.call_peer_async ("confirm", confirm.end ()));
    }
  catch (GLib.Error e)
    {
      invocation.return_gerror (e);
    }
}
/* end snippet: handlers */

/* snippet: main */
int main (string[] args)
{
  var loop = new MainLoop ();
  var server = new Tether.Server ();

  /* A handler starts the async method; the invocation keeps the call open. */
  server.add_method ("work", Tether.Access.AUTHENTICATED, (invocation) => work.begin (invocation));
  server.add_method ("ask", Tether.Access.AUTHENTICATED, (invocation) => ask.begin (invocation));
  try
    {
      server.listen (args.length > 1 ? args[1] : "unix:/tmp/tether-demo.sock");
    }
  catch (GLib.Error e)
    {
      printerr ("service: %s\n", e.message);
      return 1;
    }
  print ("listening on %s\n", server.get_uris ()[0]);
  stdout.flush ();

  Unix.signal_add (ProcessSignal.INT, () => { loop.quit (); return Source.REMOVE; });
  Unix.signal_add (ProcessSignal.TERM, () => { loop.quit (); return Source.REMOVE; });
  loop.run ();
  server.close ();            /* closes the connections, removes the socket */
  return 0;
}
/* end snippet: main */
