/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* tour: a C client that tries each thing docs/c.md explains.
 *
 *   cc tour.c $(pkg-config --cflags --libs tether-1) -o tour
 *   ./tour unix:/tmp/tether-demo.sock
 *
 * Works with any service that has the demo service's `work` and `ask`
 * (`tether serve`, examples/c/desktop-service, the service examples):
 * call options, a deadline, cancelling from another thread, and errors,
 * one call after another from callbacks on the main context. It exits 0
 * only if each outcome is the one the guide promises, so it doubles as
 * a test. */

#include <tether.h>

typedef struct
{
  GMainLoop    *loop;
  TetherClient *client;
  guint         step;
  GQuark        want_domain;  /* 0: success */
  int           want_code;
  int           status;
} Tour;

static void next_step (Tour *tour);

/* snippet: match-errors */
static void
describe_error (const GError *error)
{
  if (g_error_matches (error, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND))
    g_print ("The service has no such method\n");
  else if (g_error_matches (error, TETHER_REMOTE_ERROR, 1001))
    g_print ("Application error 1001: %s\n", error->message);
  else if (error->domain == TETHER_REMOTE_ERROR)
    g_print ("The service said no (%d): %s\n", error->code, error->message);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    g_print ("No answer in time: %s\n", error->message);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_print ("Cancelled: %s\n", error->message);
  else if (g_error_matches (error, TETHER_ERROR, TETHER_ERROR_RESOURCE_EXHAUSTED))
    g_print ("Too many calls in flight; try later\n");
  else
    g_print ("Call failed: %s\n", error->message);
}
/* end snippet: match-errors */

static void
step_finished (Tour         *tour,
               const GError *error)
{
  if (tour->want_domain == 0 ? error != NULL
                             : !g_error_matches (error, tour->want_domain, tour->want_code))
    {
      g_printerr ("tour: step %u did not end as expected\n", tour->step);
      tour->status = 1;
      g_main_loop_quit (tour->loop);
      return;
    }
  next_step (tour);
}

/* snippet: call-done */
static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Tour *tour = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = tether_client_call_finish (TETHER_CLIENT (source), result, &error);

  if (value != NULL)
    {
      g_autofree char *text = g_variant_print (value, TRUE);

      g_print ("-> %s\n", text);
    }
  else
    {
      g_print ("-> ");
      describe_error (error);
    }
  step_finished (tour, error);
}
/* end snippet: call-done */

static GVariant *
work_params (gint64 steps,
             gint64 delay_ms)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "steps", "x", steps);
  g_variant_dict_insert (&dict, "delay_ms", "x", delay_ms);
  return g_variant_dict_end (&dict);
}

/* snippet: canceller */
static gpointer
cancel_later (gpointer data)
{
  g_autoptr(GCancellable) cancellable = data;

  g_usleep (100 * G_TIME_SPAN_MILLISECOND);
  /* The one Tether-related call that is safe from any thread. */
  g_cancellable_cancel (cancellable);
  return NULL;
}
/* end snippet: canceller */

static void
expect (Tour   *tour,
        GQuark  domain,
        int     code)
{
  tour->want_domain = domain;
  tour->want_code = code;
}

static void
next_step (Tour *tour)
{
  switch (++tour->step)
    {
    case 1:
      g_print ("work {steps: 2, delay_ms: 10}, 5 s deadline ");
      expect (tour, 0, 0);
      /* snippet: options */
      tether_client_call_async (tour->client, "work", work_params (2, 10),
                                5000,   /* deadline in ms; -1: the client's default-timeout */
                                NULL,   /* cancellable */
                                call_done_cb, tour);
      /* end snippet: options */
      break;
    case 2:
      g_print ("work {steps: 1, delay_ms: 5000}, 200 ms deadline ");
      expect (tour, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      tether_client_call_async (tour->client, "work", work_params (1, 5000), 200, NULL,
                                call_done_cb, tour);
      break;
    case 3:
      {
        g_print ("work {steps: 1, delay_ms: 5000}, cancelled from another thread ");
        expect (tour, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        /* snippet: cancel */
        g_autoptr(GCancellable) cancellable = g_cancellable_new ();

        tether_client_call_async (tour->client, "work", work_params (1, 5000), -1,
                                  cancellable, call_done_cb, tour);
        g_thread_unref (g_thread_new ("canceller", cancel_later, g_object_ref (cancellable)));
        /* end snippet: cancel */
      }
      break;
    case 4:
      g_print ("no-such-method ");
      expect (tour, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_METHOD_NOT_FOUND);
      tether_client_call_async (tour->client, "no-such-method", NULL, -1, NULL,
                                call_done_cb, tour);
      break;
    case 5:
      g_print ("work {steps: 'three'} ");
      expect (tour, TETHER_REMOTE_ERROR, TETHER_REMOTE_ERROR_INVALID_PARAMS);
      tether_client_call_async (tour->client, "work",
                                g_variant_new_parsed ("{'steps': <'three'>}"), -1, NULL,
                                call_done_cb, tour);
      break;
    default:
      tour->status = 0;
      g_main_loop_quit (tour->loop);
    }
}

static void
on_progress (TetherInvocation *invocation,
             gpointer          user_data)
{
  tether_invocation_return_value (invocation, g_variant_new_boolean (TRUE));
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Tour *tour = user_data;
  g_autoptr(GError) error = NULL;

  if (!tether_client_connect_finish (TETHER_CLIENT (source), result, &error))
    {
      g_printerr ("tour: cannot connect: %s\n", error->message);
      g_main_loop_quit (tour->loop);
      return;
    }
  next_step (tour);
}

int
main (int    argc,
      char **argv)
{
  Tour tour = { .status = 1 };

  tour.loop = g_main_loop_new (NULL, FALSE);
  tour.client = tether_client_new (argc > 1 ? argv[1] : "unix:/tmp/tether-demo.sock");
  tether_client_add_method (tour.client, "progress", on_progress, NULL, NULL);
  tether_client_connect_async (tour.client, NULL, connected_cb, &tour);
  g_main_loop_run (tour.loop);

  tether_client_close (tour.client);
  g_object_unref (tour.client);
  g_main_loop_unref (tour.loop);
  return tour.status;
}
