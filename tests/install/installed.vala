/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Compiled by test-installed.sh with only `--pkg tether-1` and the
 * installed vapi: gio-2.0 must come from the installed tether-1.deps.
 * A server and a client in one process; usage: installed-vala SOCKET-PATH */

async void run (string uri) throws Error
{
  var server = new Tether.Server ();
  server.add_method ("echo", Tether.Access.AUTHENTICATED, (invocation) => {
    invocation.return_value (invocation.get_parameters ());
  });
  server.listen (uri);

  var client = new Tether.Client (uri);
  yield client.connect_async (new Cancellable ());
  var answer = yield client.call_async ("echo", new Variant.parsed ("{'n': <int64 42>}"),
                                        5000, null);
  if ((int64) answer.lookup_value ("n", VariantType.INT64) != 42)
    throw new IOError.FAILED ("echo answered %s", answer.print (true));
  try {
    yield client.call_async ("missing", null, 5000, null);
    throw new IOError.FAILED ("missing was not refused");
  } catch (Tether.RemoteError.METHOD_NOT_FOUND e) {
  }
  client.close ();
  server.close ();
}

int main (string[] args)
{
  var loop = new MainLoop ();
  var status = 1;
  run.begin ("unix:" + args[1], (obj, res) => {
    try {
      run.end (res);
      status = 0;
    } catch (Error e) {
      printerr ("Vala: %s\n", e.message);
    }
    loop.quit ();
  });
  Timeout.add_seconds (10, () => { loop.quit (); return Source.REMOVE; });
  loop.run ();
  if (status == 0)
    print ("Vala: built with the installed tether-1.vapi and .deps\n");
  return status;
}
