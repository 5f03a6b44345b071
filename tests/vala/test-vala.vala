/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Tether from Vala through tether-1.vapi: the defaults that
 * Tether-1.0.metadata gives (params = null, timeout_msec = -1,
 * cancellable = null), deadlines and cancellation, and errors caught the
 * way docs/vala.md says, with `using Tether;` in force (so `Error` alone
 * would be ambiguous: tests/vala/meson.build checks that too). A server
 * and a client in this process, over a Unix socket; prints TAP, and
 * gives up after 20 s.
 */

using Tether;

int failures = 0;
int step = 0;

void check (bool ok, string what)
{
  step++;
  print ("%s %d - %s\n", ok ? "ok" : "not ok", step, what);
  if (!ok)
    failures++;
}

class Fixture : Object
{
  public Server server = new Server ();
  public Client client;
  GenericArray<Invocation> unanswered = new GenericArray<Invocation> ();

  public Fixture (string uri) throws GLib.Error
  {
    server.add_method ("echo", Access.ANY, (invocation) => {
      invocation.return_value (invocation.get_parameters ());
    });
    /* Keeps its invocations, never answers: a deadline must end the call. */
    server.add_method ("never", Access.ANY, (invocation) => {
      unanswered.add (invocation);
    });
    server.listen (uri);
    client = new Client (uri);
  }

  public async void run () throws GLib.Error
  {
    /* Every default at once: no cancellable, no params, no deadline. */
    yield client.connect_async ();
    check (client.is_connected (), "connect_async () with its default cancellable");

    var nothing = yield client.call_async ("echo");
    check (nothing != null, "call_async (method) alone: no params, default deadline");

    var dict = new VariantDict ();
    dict.insert ("n", "x", (int64) 42);
    var echoed = yield client.call_async ("echo", dict.end ());
    check ((int64) echoed.lookup_value ("n", VariantType.INT64) == 42,
           "call_async (method, params)");

    try
      {
        yield client.call_async ("never", null, 100);
        check (false, "a call nobody answers fails at its deadline");
      }
    catch (IOError.TIMED_OUT e)
      {
        check (true, "a call nobody answers fails at its deadline: " + e.message);
      }

    var cancellable = new Cancellable ();
    Timeout.add (50, () => {
      cancellable.cancel ();
      return Source.REMOVE;
    });
    try
      {
        yield client.call_async ("never", null, -1, cancellable);
        check (false, "a cancelled call fails with IOError.CANCELLED");
      }
    catch (IOError.CANCELLED e)
      {
        check (true, "a cancelled call fails with IOError.CANCELLED");
      }

    try
      {
        yield client.call_async ("no-such-method");
        check (false, "a refusal arrives as Tether.RemoteError");
      }
    catch (RemoteError.METHOD_NOT_FOUND e)
      {
        check (true, "a refusal arrives as Tether.RemoteError.METHOD_NOT_FOUND");
      }

    /* With `using Tether;`, the catch-all names GLib.Error. */
    try
      {
        yield client.call_async ("no-such-method");
      }
    catch (GLib.Error e)
      {
        check (e is RemoteError && e.code == RemoteError.METHOD_NOT_FOUND,
               "catch (GLib.Error e) catches every Tether error");
      }

    client.close ();
    server.close ();
  }
}

int
main (string[] args)
{
  var loop = new MainLoop ();
  string dir;
  Fixture fixture;

  try
    {
      dir = DirUtils.make_tmp ("tether-vala-XXXXXX");
      fixture = new Fixture ("unix:" + Path.build_filename (dir, "vala.sock"));
    }
  catch (GLib.Error e)
    {
      print ("Bail out! %s\n", e.message);
      return 1;
    }

  Timeout.add_seconds (20, () => {
    print ("Bail out! timed out\n");
    Process.exit (1);
  });
  fixture.run.begin ((obj, res) => {
    try
      {
        fixture.run.end (res);
      }
    catch (GLib.Error e)
      {
        check (false, "unexpected error: " + e.message);
      }
    loop.quit ();
  });
  loop.run ();
  DirUtils.remove (dir);
  print ("1..%d\n", step);
  return failures == 0 ? 0 : 1;
}
