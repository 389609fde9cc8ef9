/* scoreboard: MAP_SHARED|MAP_ANONYMOUS memory (unicorn's raindrops idea).
 * Only touched pages become resident, so sizing it for the maximum process
 * count costs nothing on small nodes. */
#include "scoreboard.h"

#include <string.h>
#include <sys/mman.h>

static const char *const state_names[] = {"free", "booting", "idle", "busy", "quiet", "stopping"};

int scoreboard_create(struct scoreboard *sb, size_t ncells)
{
	void *p = mmap(NULL, ncells * sizeof(struct sb_cell), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	sb->cells = p;
	sb->ncells = ncells;
	return 0;
}

void scoreboard_destroy(struct scoreboard *sb)
{
	if (sb->cells)
		munmap(sb->cells, sb->ncells * sizeof(struct sb_cell));
	sb->cells = NULL;
	sb->ncells = sb->nused = 0;
}

int scoreboard_claim(struct scoreboard *sb, pid_t pid, int slot)
{
	for (size_t i = 0; i < sb->ncells; i++) {
		struct sb_cell *c = &sb->cells[i];
		if (c->pid == 0) {
			memset(c, 0, sizeof(*c));
			c->pid = pid ? pid : -1;
			c->slot = slot;
			c->state = SB_BOOTING;
			if (i >= sb->nused)
				sb->nused = i + 1;
			return (int)i;
		}
	}
	return -1;
}

void scoreboard_release(struct scoreboard *sb, int cell)
{
	if (cell >= 0 && (size_t)cell < sb->ncells)
		memset(&sb->cells[cell], 0, sizeof(sb->cells[cell]));
}

struct sb_cell *scoreboard_cell(const struct scoreboard *sb, int cell)
{
	return &sb->cells[cell];
}

const char *scoreboard_state_name(enum sb_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}
