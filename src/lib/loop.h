/* Event loop: one thread waits on file descriptors and timers (epoll +
 * timerfd) and runs their callbacks. Device back ends (console input,
 * network, disk completions) and the control socket live here, never on a
 * vCPU thread. All functions except loop_run are safe from any thread. */
#ifndef XVM_LIB_LOOP_H
#define XVM_LIB_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_timer;

typedef void (*loop_fd_fn)(void *opaque, uint32_t epoll_events);
typedef void (*loop_fn)(void *opaque);

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watches fd for events (EPOLLIN, EPOLLOUT ...). One watch per fd. */
int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *opaque);
int loop_mod_fd(struct loop *l, int fd, uint32_t events);
/* After it returns, the callback for fd is not running and will not run. */
void loop_del_fd(struct loop *l, int fd);

/* Runs fn(opaque) on the loop thread soon (thread-safe, async). */
void loop_call(struct loop *l, loop_fn fn, void *opaque);

/* Timers fire fn on the loop thread. */
struct loop_timer *loop_timer_new(struct loop *l, loop_fn fn, void *opaque);
/* First expiry after delay_ns, then every period_ns (0 = one-shot). delay 0 disarms. */
void loop_timer_arm(struct loop_timer *t, uint64_t delay_ns, uint64_t period_ns);
void loop_timer_free(struct loop_timer *t);

/* Runs until loop_stop; returns 0. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
