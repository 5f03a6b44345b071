/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A Tether client in Vala: connects to a service (`tether serve URI` or
 * examples/c/desktop-service), asks it to work and answers its progress
 * callbacks, answers its question, and shows how a refusal from the peer
 * arrives.
 *
 *   valac --pkg tether-1 client.vala && ./client unix:/tmp/tether-demo.sock
 */

class Example : Object
{
  Tether.Client client;
  int64 progress_seen = 0;

  public Example (string uri)
  {
    client = new Tether.Client (uri);

    /* The callbacks the service may make: add them before connecting. */
    client.add_method ("progress", on_progress);
    client.add_method ("confirm", on_confirm);
  }

  void on_progress (Tether.Invocation invocation)
  {
    var params = invocation.get_parameters ();
    var step = (int64) params.lookup_value ("step", VariantType.INT64);
    var of = (int64) params.lookup_value ("of", VariantType.INT64);

    progress_seen++;
    print ("progress: step %" + int64.FORMAT + " of %" + int64.FORMAT
           + " (%" + int64.FORMAT + " ms left)\n",
           step, of, invocation.get_remaining_ms ());
    invocation.return_value (true);
  }

  void on_confirm (Tether.Invocation invocation)
  {
    var question = (string) invocation.get_parameters ().lookup_value ("question",
                                                                      VariantType.STRING);

    print ("confirm: %s -> yes\n", question);
    invocation.return_value (true);
  }

  public async void run () throws Error
  {
    yield client.connect_async (null);
    print ("connected to %s\n", client.get_server_identity ().to_string ());

    /* work: the service calls progress once per step. */
    var work = new VariantDict ();
    work.insert ("steps", "x", (int64) 3);
    work.insert ("delay_ms", "x", (int64) 20);
    var done = yield client.call_async ("work", work.end (), 10000, null);
    print ("work -> %s\n", done.print (true));
    if (progress_seen != 3 || (int64) done.lookup_value ("done", VariantType.INT64) != 3)
      throw new IOError.FAILED ("expected 3 progress callbacks, saw %" + int64.FORMAT,
                                progress_seen);

    /* ask: the service asks our user through the confirm callback. */
    var ask = new VariantDict ();
    ask.insert ("question", "s", "Empty the trash?");
    var answer = yield client.call_async ("ask", ask.end (), -1, null);
    print ("ask -> %s\n", answer.print (true));
    if (!answer.is_of_type (VariantType.BOOLEAN) || !answer.get_boolean ())
      throw new IOError.FAILED ("expected the answer true");

    /* What the peer refuses arrives in Tether.RemoteError, with its code. */
    try
      {
        yield client.call_async ("no-such-method", null, -1, null);
        throw new IOError.FAILED ("no-such-method succeeded");
      }
    catch (Tether.RemoteError.METHOD_NOT_FOUND e)
      {
        print ("no-such-method -> refused: %s\n", e.message);
      }

    client.close ();
  }
}

int
main (string[] args)
{
  if (args.length != 2)
    {
      printerr ("usage: %s URI\n", args[0]);
      return 2;
    }

  var loop = new MainLoop ();
  var example = new Example (args[1]);
  int status = 1;

  example.run.begin ((obj, res) => {
    try
      {
        example.run.end (res);
        status = 0;
      }
    catch (Error e)
      {
        printerr ("client: %s\n", e.message);
      }
    loop.quit ();
  });
  loop.run ();
  return status;
}
