#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

enum log_level xvm_log_level = LOG_WARN;
void (*die_hook)(void);
static char log_name[80];

void log_set_name(const char *name)
{
	if (!name || !*name) {
		log_name[0] = 0;
		return;
	}
	snprintf(log_name, sizeof(log_name), "[%s]", name);
}

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One write per line so threads do not interleave mid-line. */
	fprintf(stderr, "xvm%s: %s%s\n", log_name, prefix, buf);
}

void xvm_log(enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	if (level > xvm_log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(prefix[level], fmt, ap);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;
	if (die_hook)
		die_hook();
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
	exit(1);
}
