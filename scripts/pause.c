/*
 * pause - the process that holds a pod sandbox's namespaces open.
 *
 * Written for stackctl's test node (scripts/k8s-node-binaries.sh builds it
 * with `gcc -static -Os`; the rig wraps the binary in a FROM-scratch image
 * that containerd uses as its sandbox image, since nothing can be pulled).
 *
 * It runs as PID 1 of the sandbox, where the kernel drops every signal that
 * has no handler, so it installs handlers for the ones it must act on:
 *   SIGINT, SIGTERM  exit 0 (the runtime stopping the sandbox)
 *   SIGCHLD          reap every exited child (PID 1 inherits orphans when
 *                    the pod shares its PID namespace; unreaped they stay
 *                    zombies)
 * and otherwise sleeps in pause(), using no CPU.
 *
 * Both handlers do all their work themselves with async-signal-safe calls
 * (_exit, waitpid), so the main loop needs no flag: there is no window
 * between testing a flag and calling pause() in which a signal could be lost.
 *
 *   pause -v    prints its version and exits (used to verify the build)
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAUSE_VERSION "stackctl-pause 1.0"

static void on_stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    int saved = errno; /* the interrupted code may be about to read errno */

    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

static int handle(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    /* no nesting: the other handled signals wait until this handler returns */
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGCHLD);
    if (sigaction(sig, &sa, NULL) != 0) {
        perror("pause: sigaction");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0) {
            puts(PAUSE_VERSION);
            return 0;
        }
        fprintf(stderr, "usage: pause [-v]\n");
        return 2;
    }
    if (getpid() != 1)
        fprintf(stderr, "pause: warning: not running as PID 1\n");

    /* SA_NOCLDSTOP: stopped or continued children need no reaping. */
    if (handle(SIGINT, on_stop, 0) != 0 || handle(SIGTERM, on_stop, 0) != 0 ||
        handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) != 0)
        return 1;

    for (;;)
        pause();
}
