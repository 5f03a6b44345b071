/* SPDX-License-Identifier: LGPL-2.1-or-later */
async void run (string uri) throws Error
{
  var client = new Tether.Client (uri);
  client.add_method ("progress", (invocation) => {
    var params = invocation.get_parameters ();
    print ("progress: %s of %s\n", params.lookup_value ("step", null).print (false),
           params.lookup_value ("of", null).print (false));
    invocation.return_value (true);
  });
  yield client.connect_async ();
  var result = yield client.call_async ("work",
    new Variant.parsed ("{'steps': <int64 3>, 'delay_ms': <int64 200>}"));
  print ("result: %s\n", result.print (true));
}

int main (string[] args)
{
  var loop = new MainLoop ();
  var status = 1;
  run.begin (args.length > 1 ? args[1] : "unix:/tmp/tether-demo.sock", (obj, res) => {
    try {
      run.end (res);
      status = 0;
    } catch (Error e) {
      printerr ("%s\n", e.message);
    }
    loop.quit ();
  });
  loop.run ();
  return status;
}
