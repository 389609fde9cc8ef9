/* master_recycle: replaces a worker that has grown past max_rss or run
 * max_jobs jobs. The replacement starts first and the old worker stops only
 * when it is ready (master_child_ready), exactly as a rolling restart does
 * for one slot, so the old worker's running job finishes within
 * shutdown_timeout like any graceful stop. */
#include "master.h"

#include <stdio.h>
#include <stdlib.h>

#include "procmem.h"
#include "util.h"
#include "master_int.h"

#define RECYCLE_INTERVAL 1.0 /* seconds between looks at the workers */
/* smaps_rollup walks the page tables: about 5 ms for a worker with 300 MiB
 * resident, against 5 us for statm. PSS is read for two workers a look,
 * in turn, so the loop never stalls for long. */
#define PSS_PER_LOOK 2
#define RECYCLE_YOUNG 60.0   /* a recycled worker younger than this... */
#define RECYCLE_BACKOFF 5.0  /* ...makes its slot wait 5 s, 10 s, ... 320 s */

const char *master_restart_cause_name(enum restart_cause cause)
{
	static const char *const names[] = {"crash", "rolling", "max_rss", "max_jobs"};
	_Static_assert(ARRAY_SIZE(names) == RESTART_CAUSES, "restart cause names");
	return names[cause];
}

/* The worker's memory in KiB, or -1 (it is gone, or /proc says nothing). */
static long recycle_memory_kb(pid_t pid, enum config_rss_kind kind)
{
	return kind == CONFIG_RSS ? procmem_rss_kb(pid) : procmem_pss_kb(pid);
}

static void recycle_start(struct master *m, struct slot *s, enum restart_cause why)
{
	struct child *c = s->cur;
	double now = util_now_mono();
	/* Young workers recycled again and again (an app that bloats within
	 * a job or two): the slot backs off, doubling up to 320 s. */
	if (now - c->ready_at < RECYCLE_YOUNG && why == RESTART_MAX_RSS) {
		unsigned k = s->recycle_streak < 6 ? s->recycle_streak : 6;
		s->recycle_streak++;
		s->recycle_not_before = now + RECYCLE_BACKOFF * (double)(1u << k);
		if (s->recycle_streak > 2)
			log_warn("workers keep outgrowing max_rss soon after start; this slot "
				 "backs off", LF_INT("worker", s->index),
				 LF_DBL("next_after", s->recycle_not_before - now));
	} else {
		s->recycle_streak = 0;
	}
	s->next_cause = why;
	master_spawn(m, s, true);
}

/* The memory rule for one ready worker. A worker over the limit when it
 * became ready, or before its first job, shows the app's own size, not
 * growth: a replacement would start just as big, so it is named once and
 * left alone rather than replaced in a loop. */
static void recycle_check_memory(struct master *m, struct slot *s, const struct sb_cell *cell)
{
	struct child *c = s->cur;
	long kb = recycle_memory_kb(c->pid, m->cfg->max_rss_kind);
	const char *kind = m->cfg->max_rss_kind == CONFIG_PSS ? "pss" : "rss";
	if (kb <= m->cfg->max_rss_kb)
		return;
	if (cell->jobs_done == 0 || c->rss_base_kb > m->cfg->max_rss_kb) {
		if (!c->rss_warned)
			log_warn("worker is over max_rss before growing; not recycled for memory "
				 "(is max_rss below the app's own size?)", LF_INT("worker", s->index),
				 LF_INT("child", c->pid), LF_STR("kind", kind), LF_INT("memory_kb", kb),
				 LF_INT("max_rss_kb", m->cfg->max_rss_kb));
		c->rss_warned = true;
		return;
	}
	log_info("recycling worker", LF_INT("worker", s->index), LF_INT("child", c->pid),
		 LF_STR("reason", "max_rss"), LF_STR("kind", kind), LF_INT("memory_kb", kb),
		 LF_INT("max_rss_kb", m->cfg->max_rss_kb), LF_INT("jobs", cell->jobs_done),
		 LF_DBL("uptime", util_now_mono() - c->started));
	recycle_start(m, s, RESTART_MAX_RSS);
}

/* The app's own size, before any job: what a replacement would start at. */
void master_recycle_on_ready(struct master *m, struct child *c)
{
	if (m->cfg->max_rss_kb)
		c->rss_base_kb = recycle_memory_kb(c->pid, m->cfg->max_rss_kind);
}

static void recycle_check_slot(struct master *m, struct slot *s, bool look_at_memory)
{
	struct child *c = s->cur;
	/* At most one replacement per slot; a worker the current roll will
	 * replace anyway is left to it. */
	if (!c || c->state != C_READY || s->next || c->gen < m->gen)
		return;
	if (util_now_mono() < s->recycle_not_before)
		return;
	const struct sb_cell *cell = scoreboard_cell(&m->sb, c->cell);
	if (m->cfg->max_jobs && cell->jobs_done >= m->cfg->max_jobs) {
		log_info("recycling worker", LF_INT("worker", s->index), LF_INT("child", c->pid),
			 LF_STR("reason", "max_jobs"), LF_INT("jobs", cell->jobs_done),
			 LF_INT("max_jobs", m->cfg->max_jobs),
			 LF_DBL("uptime", util_now_mono() - c->started));
		recycle_start(m, s, RESTART_MAX_JOBS);
		return;
	}
	if (m->cfg->max_rss_kb && look_at_memory)
		recycle_check_memory(m, s, cell);
}

static void master_on_recycle(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = ev_userdata(loop);
	(void)t;
	(void)revents;
	/* Quiet and stop keep every worker as it is; a roll is already
	 * replacing them all. */
	if (m->state != M_RUNNING || m->rolling || (!m->cfg->max_jobs && !m->cfg->max_rss_kb))
		return;
	bool pss = m->cfg->max_rss_kind == CONFIG_PSS;
	int first = (int)(m->recycle_looks % (unsigned)m->target);
	for (int i = 0; i < m->target && m->state == M_RUNNING; i++) {
		int turn = (i - first + m->target) % m->target;
		recycle_check_slot(m, &m->slots[i], !pss || turn < PSS_PER_LOOK);
	}
	m->recycle_looks += PSS_PER_LOOK;
}

void master_recycle_init(struct master *m)
{
	ev_timer_init(&m->recycle_w, master_on_recycle, RECYCLE_INTERVAL, RECYCLE_INTERVAL);
	ev_timer_start(m->loop, &m->recycle_w);
}
