/* threadpool.h — a persistent pool of worker threads for data-parallel loops.
 * pika_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) once for every ith in [0, nth) — the
 * caller runs ith = 0 — and returns when all calls have finished. Workers spin briefly and then
 * sleep between jobs, so short back-to-back jobs (decode) don't pay a wake-up each time. */
#ifndef PIKA_THREADPOOL_H
#define PIKA_THREADPOOL_H

typedef struct pika_pool pika_pool;
typedef void (*pika_pool_fn)(void *ctx, int ith, int nth);

pika_pool *pika_pool_new(int n_threads); /* n_threads >= 1 (1 = no workers) */
void pika_pool_free(pika_pool *p);
int pika_pool_size(const pika_pool *p);
void pika_pool_run(pika_pool *p, pika_pool_fn fn, void *ctx);

#endif
