/* testnet: helpers for the unit tests that start a server of their own (an
 * etcd, a NATS node): a free loopback port, and a sleep. A failure is the
 * test machine's: it prints the reason and exits 1. */
#ifndef CTRD_TESTNET_H
#define CTRD_TESTNET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A loopback socket bound to a port the kernel chose, and that port (close
 * the socket to hand the port to a server). */
static inline int testnet_bound_socket(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bind");
        exit(1);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static inline void testnet_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

#endif
