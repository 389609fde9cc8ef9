/* master_notify: what systemd hears from the master (sdnotify.c does the
 * talking): READY=1 once every initial worker is ready, RELOADING=1 on HUP
 * and READY=1 again when its rolling restart is over, STOPPING=1, and a
 * STATUS= line with workers, busy ones and leadership, refreshed each
 * second and on every change of the pool. */
#include "master.h"

#include <stdio.h>

#include "sdnotify.h"
#include "master_int.h"

#define NOTIFY_INTERVAL 1.0 /* seconds between STATUS refreshes */

static void master_notify_status(struct master *m)
{
	char status[256];
	int ready = 0, busy = 0;
	for (struct child *c = m->children; c; c = c->next) {
		if (c->state != C_READY)
			continue;
		ready++;
		busy += scoreboard_cell(&m->sb, c->cell)->state == SB_BUSY;
	}
	snprintf(status, sizeof(status), "%d/%d workers, %d busy, %s%s%s", ready, m->target, busy,
		 m->is_leader ? "leader" : "not leader", m->state == M_RUNNING ? "" : ", ",
		 m->state == M_RUNNING ? "" : master_state_name(m));
	sdnotify_status(m->notify, status);
}

void master_notify_update(struct master *m)
{
	if (!m->notify)
		return;
	master_notify_status(m);
	if (m->state != M_RUNNING && !m->reloading)
		return;
	if (!m->notified_ready && master_count_children(m, true) >= m->initial_slots) {
		m->notified_ready = true;
		sdnotify_ready(m->notify);
	} else if (m->notified_ready && m->reloading && !m->rolling) {
		m->reloading = false;
		sdnotify_ready(m->notify);
	}
}

void master_notify_reloading(struct master *m)
{
	if (!m->notify || !m->notified_ready)
		return;
	m->reloading = true;
	sdnotify_reloading(m->notify);
}

void master_notify_stopping(struct master *m)
{
	m->reloading = false;
	sdnotify_stopping(m->notify);
	master_notify_status(m);
}

static void master_on_notify(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	master_notify_update(ev_userdata(loop));
}

void master_notify_start(struct master *m)
{
	if (!(m->notify = sdnotify_new(m->loop)))
		return;
	ev_timer_init(&m->notify_w, master_on_notify, NOTIFY_INTERVAL, NOTIFY_INTERVAL);
	ev_timer_start(m->loop, &m->notify_w);
}
