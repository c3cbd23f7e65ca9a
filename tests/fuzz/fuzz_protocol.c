/*
 * libFuzzer target: the device process's side of the driver protocol, fed
 * a byte stream exactly as a client would send it over its socket. The
 * real connection code (framing, dispatch, cleanup on disconnect) serves a
 * socketpair; a second thread writes the input and drains the replies.
 * The device must answer every message and free all the client held.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "onboard/device/server.h"
#include "onboard/wire.h"

static devsrv *g_server;

typedef struct feeder {
    int fd;
    const uint8_t *data;
    size_t size;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    for (size_t done = 0; done < f->size;) {
        ssize_t n = send(f->fd, f->data + done, f->size - done, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    shutdown(f->fd, SHUT_WR);
    /* Drain replies (closing any descriptor passed) until the device side closes. */
    for (;;) {
        onb_header h;
        void *payload;
        int fd_got;
        if (onb_recv(f->fd, &h, &payload, &fd_got, -1, 0) != ONB_WIRE_OK)
            break;
        free(payload);
        if (fd_got >= 0)
            close(fd_got);
    }
    return NULL;
}

static void setup(void)
{
    static char dir[] = "/tmp/simpler-fuzz-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    devsrv_config cfg = {0, 64u << 20, dir, 1};
    if (devsrv_create(&cfg, &g_server) != 0) {
        fprintf(stderr, "devsrv_create failed\n");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, setup);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    feeder f = {sv[1], data, size};
    pthread_t t;
    if (pthread_create(&t, NULL, feed, &f) != 0)
        abort();
    devsrv_admit(g_server);
    devsrv_serve(g_server, sv[0]);      /* closes sv[0] */
    pthread_join(t, NULL);
    close(sv[1]);
    if (devsrv_clients(g_server) != 0) {
        fprintf(stderr, "a finished connection is still counted\n");
        abort();
    }
    return 0;
}
