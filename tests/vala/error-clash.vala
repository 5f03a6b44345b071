/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Must NOT compile: with `using Tether;`, `Error` names both GLib.Error
 * and Tether.Error. docs/vala.md says so and writes `catch (GLib.Error e)`;
 * tests/vala/meson.build checks that valac still reports the ambiguity. */

using Tether;

void main ()
{
  try
    {
      new Server ().listen ("unix:/nonexistent/x.sock");
    }
  catch (Error e)
    {
      print ("%s\n", e.message);
    }
}
