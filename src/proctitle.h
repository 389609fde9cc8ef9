/* proctitle: what `ps` shows for each process ("forq: worker[2] idle"),
 * by rewriting the argv area as nginx and PostgreSQL do. */
#ifndef FORQ_PROCTITLE_H
#define FORQ_PROCTITLE_H

/* Call once from main before anything reads argv or environ again: moves
 * the environment out of the way so the title may use its space. */
void proctitle_init(int argc, char **argv);
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
