/* SPDX-License-Identifier: Apache-2.0 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "shard.h"

#define MID_MESSAGE_TIMEOUT_MS 30000
#define CONN_STACK_SIZE (512 * 1024)
#define KEEP_REQUEST_BUFFER (1024 * 1024)
#define STOP_WAIT_MS 10000

struct sim_conn {
    sim_client_t cl;
    int fd;
    sim_server_t *srv;
    struct sim_conn *prev, *next;
};

struct sim_server {
    sim_t *sim;
    const char *name;
    int lfd;
    int port;
    int max_conns;
    sim_serve_fn serve;
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_cond_t gone;
    sim_conn_t *conns;
    int nconns;
    uint64_t next_id;
    atomic_bool closing;
};

int sim_conn_fd(const sim_conn_t *c) { return c->fd; }
sim_client_t *sim_conn_client(sim_conn_t *c) { return &c->cl; }
sim_t *sim_server_sim(const sim_server_t *srv) { return srv->sim; }
int sim_server_port(const sim_server_t *srv) { return srv->port; }

int sim_read_full(int fd, void *buf, size_t n, bool idle_ok)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        if (!(idle_ok && got == 0)) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int pr = poll(&pfd, 1, MID_MESSAGE_TIMEOUT_MS);
            if (pr == 0)
                return -ETIMEDOUT;
            if (pr < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
        }
        ssize_t r = recv(fd, p + got, n - got, 0);
        if (r == 0)
            return got == 0 && idle_ok ? 0 : -EPIPE;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    return 1;
}

int sim_write_full(int fd, const void *a, size_t alen, const void *b, size_t blen)
{
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    int n = blen ? 2 : 1, i = 0;
    while (i < n) {
        ssize_t w = writev(fd, iov + i, n - i);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)w;
        while (i < n && left >= iov[i].iov_len)
            left -= iov[i++].iov_len;
        if (i < n) {
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + left;
            iov[i].iov_len -= left;
        }
    }
    return 0;
}

static void *conn_main(void *arg)
{
    sim_conn_t *c = arg;
    sim_server_t *srv = c->srv;
    srv->serve(srv, c);
    pthread_mutex_lock(&srv->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    pthread_cond_broadcast(&srv->gone);
    pthread_mutex_unlock(&srv->mu);
    close(c->fd);
    bson_destroy(&c->cl.scratch);
    free(c);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    sim_server_t *srv = arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, CONN_STACK_SIZE);
    for (;;) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(srv->lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
        if (atomic_load(&srv->closing)) {
            if (fd >= 0)
                close(fd);
            break;
        }
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timespec ts = {0, 10 * 1000000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sim_conn_t *c = calloc(1, sizeof *c);
        pthread_mutex_lock(&srv->mu);
        if (!c || srv->nconns >= srv->max_conns) {
            pthread_mutex_unlock(&srv->mu);
            POH_WARN(SIM_LOG, "%s: refusing a connection: %d connections open (limit %d)", srv->name, srv->nconns,
                     srv->max_conns);
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->srv = srv;
        c->cl.sim = srv->sim;
        c->cl.conn_id = ++srv->next_id;
        c->cl.has_fd = true;
        c->cl.fd = fd;
        bson_init(&c->cl.scratch);
        char ip[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
        snprintf(c->cl.peer, sizeof c->cl.peer, "%s:%u", ip, ntohs(sa.sin_port));
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        srv->nconns++;
        pthread_t th;
        int rc = pthread_create(&th, &attr, conn_main, c);
        if (rc != 0) {
            srv->conns = c->next;
            if (c->next)
                c->next->prev = NULL;
            srv->nconns--;
            pthread_mutex_unlock(&srv->mu);
            POH_WARN(SIM_LOG, "%s: cannot start a connection thread: %s", srv->name, strerror(rc));
            bson_destroy(&c->cl.scratch);
            close(fd);
            free(c);
            continue;
        }
        pthread_mutex_unlock(&srv->mu);
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

sim_server_t *sim_server_start(sim_t *sim, const char *name, const char *bind_addr, int port, int max_conns,
                               sim_serve_fn serve)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t sl = sizeof sa;
    int one = 1;
    sim_server_t *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    srv->sim = sim;
    srv->name = name;
    srv->max_conns = max_conns;
    srv->serve = serve;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->gone, NULL);
    srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (srv->lfd < 0 || inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
        POH_ERROR(SIM_LOG, "%s: cannot listen on %s: not an IPv4 address or no socket", name, bind_addr);
        goto err;
    }
    setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(srv->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(srv->lfd, 512) < 0 ||
        getsockname(srv->lfd, (struct sockaddr *)&sa, &sl) < 0) {
        POH_ERROR(SIM_LOG, "%s: cannot listen on %s:%d: %s", name, bind_addr, port, strerror(errno));
        goto err;
    }
    srv->port = ntohs(sa.sin_port);
    if (pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0) {
        POH_ERROR(SIM_LOG, "%s: cannot start the accept thread", name);
        goto err;
    }
    return srv;
err:
    if (srv->lfd >= 0)
        close(srv->lfd);
    pthread_cond_destroy(&srv->gone);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
    return NULL;
}

int sim_server_drop_all(sim_server_t *srv)
{
    int n = 0;
    pthread_mutex_lock(&srv->mu);
    for (sim_conn_t *c = srv->conns; c; c = c->next) {
        atomic_store(&c->cl.dropped, true);
        shutdown(c->fd, SHUT_RDWR);
        n++;
    }
    pthread_mutex_unlock(&srv->mu);
    /* Wake getMores that await events so they notice at once. */
    pthread_mutex_lock(&srv->sim->mu);
    pthread_cond_broadcast(&srv->sim->wake);
    pthread_mutex_unlock(&srv->sim->mu);
    return n;
}

int sim_server_count(sim_server_t *srv)
{
    pthread_mutex_lock(&srv->mu);
    int n = srv->nconns;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

int sim_server_stop(sim_server_t *srv)
{
    if (!srv)
        return 0;
    atomic_store(&srv->closing, true);
    shutdown(srv->lfd, SHUT_RDWR); /* wakes accept() */
    pthread_join(srv->acceptor, NULL);
    sim_server_drop_all(srv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_WAIT_MS / 1000;
    pthread_mutex_lock(&srv->mu);
    while (srv->nconns > 0)
        if (pthread_cond_timedwait(&srv->gone, &srv->mu, &until) == ETIMEDOUT)
            break;
    int left = srv->nconns;
    pthread_mutex_unlock(&srv->mu);
    close(srv->lfd);
    if (left) {
        /* A thread still runs and owns srv->mu: leave the server allocated. */
        POH_ERROR(SIM_LOG, "%s: %d connection threads did not stop", srv->name, left);
        return -EBUSY;
    }
    pthread_cond_destroy(&srv->gone);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
    return 0;
}

/* ---- the MongoDB wire protocol --------------------------------------------------- */

static void conn_closing(sim_conn_t *c, const char *why)
{
    if (atomic_load(&c->cl.dropped))
        POH_DEBUG(SIM_LOG, "connection %llu from %s dropped", (unsigned long long)c->cl.conn_id, c->cl.peer);
    else
        POH_WARN(SIM_LOG, "connection %llu from %s closed: %s", (unsigned long long)c->cl.conn_id, c->cl.peer, why);
}

void sim_serve_mongo(sim_server_t *srv, sim_conn_t *c)
{
    sim_t *sim = srv->sim;
    uint8_t hdr[SIM_MSG_HEADER], rh[SIM_REPLY_HDR_MAX];
    uint8_t *buf = NULL;
    size_t cap = 0;
    bson_t reply = BSON_INITIALIZER;
    atomic_fetch_add(&sim->st.conns_current, 1);
    atomic_fetch_add(&sim->st.conns_total, 1);
    POH_DEBUG(SIM_LOG, "connection %llu from %s", (unsigned long long)c->cl.conn_id, c->cl.peer);
    for (;;) {
        int r = sim_read_full(c->fd, hdr, sizeof hdr, true);
        if (r == 0) {
            POH_DEBUG(SIM_LOG, "connection %llu closed by the client", (unsigned long long)c->cl.conn_id);
            break;
        }
        if (r < 0) {
            conn_closing(c, r == -EPIPE ? "truncated message header" : strerror(-r));
            break;
        }
        int32_t len = sim_le32(hdr);
        if (len < SIM_MSG_HEADER || len > SIM_MAX_MESSAGE) {
            char why[96];
            snprintf(why, sizeof why, "message length %d outside [16, %d]", len, SIM_MAX_MESSAGE);
            conn_closing(c, why);
            break;
        }
        if ((size_t)len > cap) {
            uint8_t *nb = realloc(buf, (size_t)len);
            if (!nb) {
                conn_closing(c, "out of memory for the message");
                break;
            }
            buf = nb;
            cap = (size_t)len;
        }
        memcpy(buf, hdr, sizeof hdr);
        r = sim_read_full(c->fd, buf + sizeof hdr, (size_t)len - sizeof hdr, false);
        if (r < 0) {
            conn_closing(c, r == -EPIPE ? "truncated message (connection closed mid-message)"
                            : r == -ETIMEDOUT ? "truncated message (timed out mid-message)" : strerror(-r));
            break;
        }
        atomic_fetch_add(&sim->st.bytes_in, (uint64_t)len);
        sim_request_t req;
        const char *why;
        if (sim_wire_parse(buf, (size_t)len, &req, &why) < 0) {
            conn_closing(c, why);
            break;
        }
        bson_reinit(&reply);
        int rc = sim->cluster ? sim_mongos_dispatch(sim, &c->cl, &req, &reply) : sim_dispatch(sim, &c->cl, &req, &reply);
        if (cap > KEEP_REQUEST_BUFFER) {
            free(buf);
            buf = NULL;
            cap = 0;
        }
        if (rc == SIM_CLOSE) {
            conn_closing(c, "dropped");
            break;
        }
        if (rc == SIM_NO_REPLY)
            continue;
        size_t hl = sim_wire_reply_header(rh, &req, (int32_t)(atomic_fetch_add(&sim->st.reply_ids, 1) + 1), reply.len);
        if (sim_write_full(c->fd, rh, hl, bson_get_data(&reply), reply.len) < 0) {
            conn_closing(c, "write failed");
            break;
        }
        atomic_fetch_add(&sim->st.bytes_out, hl + reply.len);
    }
    free(buf);
    bson_destroy(&reply);
    atomic_fetch_sub(&sim->st.conns_current, 1);
}
