#include "hw/io.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct io_region {
	uint64_t base, len;
	const struct io_ops *ops;
	void *opaque;
	char name[24];
};

struct io_table {
	unsigned n;
	struct io_table *retired; /* older tables, freed with the space */
	struct io_region r[];
};

struct io_space {
	char name[16];
	pthread_mutex_t write_lock;
	struct io_table *table; /* read lock-free */
};

static struct io_table *table_alloc(unsigned n)
{
	struct io_table *t = xcalloc(1, sizeof(*t) + n * sizeof(struct io_region));
	t->n = n;
	return t;
}

struct io_space *io_space_new(const char *name)
{
	struct io_space *s = xcalloc(1, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	pthread_mutex_init(&s->write_lock, NULL);
	s->table = table_alloc(0);
	return s;
}

void io_space_free(struct io_space *s)
{
	if (!s)
		return;
	struct io_table *t = s->table;
	while (t) {
		struct io_table *n = t->retired;
		free(t);
		t = n;
	}
	pthread_mutex_destroy(&s->write_lock);
	free(s);
}

/* Old tables may still be read by a vCPU thread; keep them until teardown.
 * BAR moves are rare (a handful per boot), so this is bounded in practice. */
static void publish(struct io_space *s, struct io_table *nt)
{
	nt->retired = s->table;
	__atomic_store_n(&s->table, nt, __ATOMIC_RELEASE);
}

int io_register(struct io_space *s, uint64_t base, uint64_t len,
		const struct io_ops *ops, void *opaque, const char *name)
{
	if (len == 0 || base + len - 1 < base)
		return -EINVAL;
	pthread_mutex_lock(&s->write_lock);
	struct io_table *t = s->table;
	unsigned pos = 0;
	for (unsigned i = 0; i < t->n; i++) {
		const struct io_region *r = &t->r[i];
		if (base <= r->base + r->len - 1 && r->base <= base + len - 1) {
			log_debug("%s: %s [%#llx+%#llx] overlaps %s", s->name, name,
				  (unsigned long long)base, (unsigned long long)len, r->name);
			pthread_mutex_unlock(&s->write_lock);
			return -EEXIST;
		}
		if (r->base < base)
			pos = i + 1;
	}
	struct io_table *nt = table_alloc(t->n + 1);
	memcpy(nt->r, t->r, pos * sizeof(struct io_region));
	memcpy(nt->r + pos + 1, t->r + pos, (t->n - pos) * sizeof(struct io_region));
	struct io_region *r = &nt->r[pos];
	r->base = base;
	r->len = len;
	r->ops = ops;
	r->opaque = opaque;
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "?");
	publish(s, nt);
	pthread_mutex_unlock(&s->write_lock);
	return 0;
}

int io_unregister(struct io_space *s, uint64_t base, void *opaque)
{
	pthread_mutex_lock(&s->write_lock);
	struct io_table *t = s->table;
	for (unsigned i = 0; i < t->n; i++) {
		if (t->r[i].base == base && t->r[i].opaque == opaque) {
			struct io_table *nt = table_alloc(t->n - 1);
			memcpy(nt->r, t->r, i * sizeof(struct io_region));
			memcpy(nt->r + i, t->r + i + 1, (t->n - i - 1) * sizeof(struct io_region));
			publish(s, nt);
			pthread_mutex_unlock(&s->write_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&s->write_lock);
	return -ENOENT;
}

static const struct io_region *lookup(struct io_space *s, uint64_t addr)
{
	const struct io_table *t = __atomic_load_n(&s->table, __ATOMIC_ACQUIRE);
	unsigned lo = 0, hi = t->n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct io_region *r = &t->r[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool io_read(struct io_space *s, uint64_t addr, unsigned size, uint64_t *value)
{
	const struct io_region *r = lookup(s, addr);
	uint64_t mask = size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
	if (!r || !r->ops->read) {
		log_debug("%s: unassigned read %#llx/%u", s->name, (unsigned long long)addr, size);
		*value = mask;
		return false;
	}
	*value = r->ops->read(r->opaque, addr - r->base, size) & mask;
	return true;
}

bool io_write(struct io_space *s, uint64_t addr, unsigned size, uint64_t value)
{
	const struct io_region *r = lookup(s, addr);
	if (!r || !r->ops->write) {
		log_debug("%s: unassigned write %#llx/%u = %#llx", s->name,
			  (unsigned long long)addr, size, (unsigned long long)value);
		return false;
	}
	uint64_t mask = size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
	r->ops->write(r->opaque, addr - r->base, size, value & mask);
	return true;
}

void io_space_dump(struct io_space *s)
{
	const struct io_table *t = __atomic_load_n(&s->table, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < t->n; i++)
		fprintf(stderr, "%s %016llx-%016llx %s\n", s->name,
			(unsigned long long)t->r[i].base,
			(unsigned long long)(t->r[i].base + t->r[i].len - 1), t->r[i].name);
}
