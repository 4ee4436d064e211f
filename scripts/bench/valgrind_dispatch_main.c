// LD_PRELOAD shim for running a Swift server under valgrind 3.19 (Debian bookworm).
//
// Swift's async main ends in libdispatch's dispatch_main(), which calls pthread_exit on the main thread and
// parks it in a thread-specific-data destructor (_dispatch_sig_thread → sigsuspend); valgrind 3.19 dies
// with an internal SIGSEGV there. This dispatch_main keeps the main thread and drives the main queue
// itself, through the hooks libdispatch exports for CoreFoundation's run loop. Only for measuring: the
// server behaves the same, the main thread just waits in poll() instead of sigsuspend().
//
// Build: cc -O2 -shared -fPIC -o shim.so valgrind_dispatch_main.c -L$SWIFT_LIB -Wl,-rpath,$SWIFT_LIB -ldispatch
#define _GNU_SOURCE
#include <poll.h>

extern void _dispatch_main_queue_callback_4CF(void *message);
extern int _dispatch_get_main_queue_handle_4CF(void);

void dispatch_main(void) {
    int handle = _dispatch_get_main_queue_handle_4CF();
    for (;;) {
        struct pollfd ready = { handle, POLLIN, 0 };
        poll(&ready, 1, -1);
        _dispatch_main_queue_callback_4CF(0);
    }
}
