/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* tour.vala: a client that tries each thing docs/vala.md explains.
 *
 *   valac --pkg tether-1 tour.vala && ./tour unix:/tmp/tether-demo.sock
 *
 * Works with any service that has the demo service's `work` and `ask`
 * (`tether serve`, examples/c/desktop-service, the service examples):
 * callbacks, call options, a deadline, cancelling from another thread,
 * and errors. It exits 0 only if each outcome is the one the guide
 * promises, so it doubles as a test. */

/* snippet: callbacks */
void on_progress (Tether.Invocation invocation)
{
  var params = invocation.get_parameters ();

  /* The invocation tells how long the call that caused this one has left. */
  print ("progress: step %s of %s (%" + int64.FORMAT + " ms left)\n",
         params.lookup_value ("step", null).print (false),
         params.lookup_value ("of", null).print (false),
         invocation.get_remaining_ms ());
  invocation.return_value (true);
}

async void on_confirm (Tether.Invocation invocation)
{
  var question = invocation.get_parameters ().lookup_value ("question", VariantType.STRING);

  /* A real program asks its user here; the invocation keeps the call open. */
  Timeout.add (50, on_confirm.callback);
  yield;
  print ("confirm: %s -> yes\n", question.get_string ());
  invocation.return_value (true);
}
/* end snippet: callbacks */

Variant work_params (int64 steps, int64 delay_ms)
{
  var dict = new VariantDict ();
  dict.insert ("steps", "x", steps);
  dict.insert ("delay_ms", "x", delay_ms);
  return dict.end ();
}

async void tour (string uri) throws GLib.Error
{
  /* snippet: client */
  var client = new Tether.Client (uri);
  client.add_method ("progress", on_progress);
  client.add_method ("confirm", (invocation) => on_confirm.begin (invocation));
  yield client.connect_async ();
  /* end snippet: client */

  /* snippet: options */
  var result = yield client.call_async ("work", work_params (2, 10), 5000);
  print ("work -> %s\n", result.print (true));
  var ask = new VariantDict ();
  ask.insert ("question", "s", "Proceed?");
  var answer = yield client.call_async ("ask", ask.end ());
  print ("ask -> %s\n", answer.print (true));
  /* end snippet: options */
  if (!answer.is_of_type (VariantType.BOOLEAN) || !answer.get_boolean ())
    throw new IOError.FAILED ("ask did not answer true");

  /* snippet: deadline */
  try
    {
      yield client.call_async ("work", work_params (1, 5000), 200);
      throw new IOError.FAILED ("work answered before its deadline");
    }
  catch (IOError.TIMED_OUT e)
    {
      print ("work -> no answer in time: %s\n", e.message);
    }
  /* end snippet: deadline */

  /* snippet: cancel */
  var cancellable = new Cancellable ();
  /* cancel () is the one Tether-related call that is safe from any thread. */
  var canceller = new Thread<void> ("canceller", () => {
    Thread.usleep (100000);
    cancellable.cancel ();
  });
  try
    {
      yield client.call_async ("work", work_params (1, 5000), -1, cancellable);
      throw new IOError.FAILED ("work was not cancelled");
    }
  catch (IOError.CANCELLED e)
    {
      print ("work -> cancelled from another thread: %s\n", e.message);
    }
  canceller.join ();
  /* end snippet: cancel */

  /* snippet: errors */
  try
    {
      yield client.call_async ("no-such-method");
      throw new IOError.FAILED ("no-such-method was answered");
    }
  catch (Tether.RemoteError.METHOD_NOT_FOUND e)
    {
      print ("no-such-method -> refused: %s\n", e.message);
    }
  var bad = new VariantDict ();
  bad.insert ("steps", "s", "three");
  try
    {
      yield client.call_async ("work", bad.end ());
      throw new IOError.FAILED ("work {steps: 'three'} was answered");
    }
  catch (Tether.RemoteError e)          /* any code the service answered with */
    {
      print ("work {steps: 'three'} -> error %d: %s\n", e.code, e.message);
      if (!(e is Tether.RemoteError.INVALID_PARAMS))
        throw e;
    }
  /* end snippet: errors */

  client.close ();
}

/* snippet: main */
int main (string[] args)
{
  var loop = new MainLoop ();
  var status = 1;

  tour.begin (args.length > 1 ? args[1] : "unix:/tmp/tether-demo.sock", (obj, res) => {
    try
      {
        tour.end (res);
        status = 0;
      }
    catch (GLib.Error e)
      {
        printerr ("tour: %s\n", e.message);
      }
    loop.quit ();
  });
  loop.run ();
  return status;
}
/* end snippet: main */
