/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * sd_notify() that never blocks the event loop. libsystemd's sd_notify() sends on a blocking
 * datagram socket: when the service manager is busy (starting fifty engine units at once, say)
 * and its notification socket's queue is full (net.unix.max_dgram_qlen, 10 in a fresh network
 * namespace), the sender sleeps until the manager reads, which was measured at two seconds
 * during a burst of preloads. Here the socket is non-blocking and connected to $NOTIFY_SOCKET, so
 * that the kernel reports it writable again once the manager's queue has room; messages that do
 * not fit wait in order, and a STATUS= line replaces a STATUS= line still waiting (only the
 * newest status means anything; the same for WATCHDOG=1).
 *
 * Without $NOTIFY_SOCKET every message is dropped, as sd_notify() does. An address that is not
 * a path or an abstract name ("vsock:..." of newer managers) goes to sd_notify() as before.
 */

#include <stddef.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

typedef struct Notifier Notifier;

int notifier_new(Notifier **ret, sd_event *event);
Notifier *notifier_free(Notifier *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(Notifier *, notifier_free);

/* Queues one message (one or more "NAME=value" lines) and sends what it can at once. Returns
 * -ENOMEM or 0; a manager that went away is no error of the caller's (logged at debug level). */
int notifier_send(Notifier *n, const char *message);

/* With $WATCHDOG_USEC set for this process: WATCHDOG=1 through the queue every half of it, as
 * sd_event_set_watchdog() would send it (blocking). 1: started, 0: not asked for. */
int notifier_start_watchdog(Notifier *n);

/* Messages still waiting for room in the manager's queue. */
size_t notifier_pending(const Notifier *n);
