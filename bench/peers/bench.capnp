# SPDX-License-Identifier: LGPL-2.1-or-later
# peer-capnp's interfaces: the client hands the server a Callback
# capability, which the server calls while handling `cb`.
@0xd4c9a1f3b2e5a6c7;

interface Bench {
  echo @0 (seq :Int64) -> (seq :Int64);
  cb @1 (seq :Int64, callback :Callback) -> (seq :Int64);
  hold @2 (n :UInt32, callback :Callback) -> ();
}

interface Callback {
  ping @0 (seq :Int64) -> (seq :Int64);
}
