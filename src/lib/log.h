/* Logging and fatal errors. Messages go to stderr, prefixed "xvm: " (or
 * "xvm[NAME]: " once log_set_name was called). */
#ifndef XVM_LIB_LOG_H
#define XVM_LIB_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level xvm_log_level;
/* The VM's name (xvm run --name): when set, lines read "xvm[NAME]: ...",
 * so the logs of several VMs on one host can be told apart. */
void log_set_name(const char *name);

void xvm_log(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Logs at most once per call site (guest-triggerable messages). */
#define log_once(level, ...)                                               \
	do {                                                               \
		static int logged_once_;                                   \
		if (!__atomic_exchange_n(&logged_once_, 1, __ATOMIC_RELAXED)) \
			xvm_log(level, __VA_ARGS__);                       \
	} while (0)

#define log_err(...)   xvm_log(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  xvm_log(LOG_WARN, __VA_ARGS__)
#define log_info(...)  xvm_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (xvm_log_level >= LOG_DEBUG) xvm_log(LOG_DEBUG, __VA_ARGS__); } while (0)

/* Prints "xvm: <msg>" and exits with status 1. */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Hook run by die() before exiting (the console uses it to restore the tty). */
extern void (*die_hook)(void);

#endif
