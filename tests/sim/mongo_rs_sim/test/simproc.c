/* SPDX-License-Identifier: Apache-2.0 */
#include "simproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MONGO_RS_SIM_PATH
#error "MONGO_RS_SIM_PATH must name the simulator binary"
#endif

extern char **environ;

double simproc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int read_line_fd(int fd, char *buf, size_t n, double timeout_s)
{
    size_t len = 0;
    double end = simproc_now() + timeout_s;
    while (len + 1 < n) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ms = (int)((end - simproc_now()) * 1000);
        if (ms <= 0 || poll(&pfd, 1, ms) <= 0)
            return -ETIMEDOUT;
        ssize_t r = read(fd, buf + len, 1);
        if (r <= 0)
            return -EPIPE;
        if (buf[len] == '\n') {
            buf[len] = 0;
            return 0;
        }
        len++;
    }
    return -E2BIG;
}

int simproc_start(simproc_t *p, const char *const *args)
{
    const char *bin = getenv("MONGO_RS_SIM") ? getenv("MONGO_RS_SIM") : MONGO_RS_SIM_PATH;
    const char *argv[64] = {bin, "--port", "0", "--control-port", "0"};
    int argc = 5, out[2];
    char line[64];
    posix_spawn_file_actions_t fa;
    memset(p, 0, sizeof *p);
    p->ctl_fd = -1;
    for (int i = 0; args && args[i] && argc < 62; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    snprintf(p->log_path, sizeof p->log_path, "/tmp/mongo_rs_sim-test-XXXXXX");
    int logfd = mkstemp(p->log_path);
    if (logfd < 0 || pipe(out) < 0)
        return -errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    int rc = posix_spawn(&p->pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(logfd);
    if (rc != 0) {
        close(out[0]);
        return -rc;
    }
    if (read_line_fd(out[0], line, sizeof line, 30) < 0 || (p->port = atoi(line)) <= 0 ||
        read_line_fd(out[0], line, sizeof line, 30) < 0 || (p->control_port = atoi(line)) <= 0) {
        close(out[0]);
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        return -EIO;
    }
    close(out[0]);
    snprintf(p->uri, sizeof p->uri, "mongodb://127.0.0.1:%d/?replicaSet=rs0&serverSelectionTimeoutMS=10000", p->port);
    snprintf(p->direct_uri, sizeof p->direct_uri,
             "mongodb://127.0.0.1:%d/?directConnection=true&serverSelectionTimeoutMS=10000", p->port);
    return 0;
}

static int ctl_connect(simproc_t *p)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->control_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    p->ctl_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->ctl_fd < 0 || connect(p->ctl_fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (p->ctl_fd >= 0)
            close(p->ctl_fd);
        p->ctl_fd = -1;
        return -1;
    }
    return 0;
}

int simproc_ctl(simproc_t *p, const char *line, char *reply, size_t n)
{
    char cmd[1100];
    if (p->ctl_fd < 0 && ctl_connect(p) < 0)
        return -1;
    int len = snprintf(cmd, sizeof cmd, "%s\n", line);
    if (len <= 0 || (size_t)len >= sizeof cmd || write(p->ctl_fd, cmd, (size_t)len) != len ||
        read_line_fd(p->ctl_fd, reply, n, 120) < 0) {
        close(p->ctl_fd);
        p->ctl_fd = -1;
        return -1;
    }
    return strncmp(reply, "ERR", 3) == 0 ? -1 : 0;
}

bson_t *simproc_ctl_json(simproc_t *p, const char *line)
{
    static char reply[1 << 20];
    bson_error_t err;
    if (simproc_ctl(p, line, reply, sizeof reply) < 0)
        return NULL;
    const char *json = strchr(reply, '{');
    return json ? bson_new_from_json((const uint8_t *)json, -1, &err) : NULL;
}

long long simproc_json_int(const bson_t *doc, const char *path)
{
    bson_iter_t it, found;
    if (!doc || !bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &found))
        return -1;
    return bson_iter_as_int64(&found);
}

long long simproc_command_count(simproc_t *p, const char *name)
{
    bson_t *cmds = simproc_ctl_json(p, "COMMANDS");
    long long n = simproc_json_int(cmds, name);
    bson_destroy(cmds);
    return n < 0 ? 0 : n;
}

double simproc_cpu_seconds(const simproc_t *p)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *s = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int simproc_stop(simproc_t *p)
{
    char reply[64];
    int status = 0, rc = 0;
    if (p->pid <= 0)
        return 0;
    if (simproc_ctl(p, "SHUTDOWN", reply, sizeof reply) < 0)
        kill(p->pid, SIGTERM);
    double end = simproc_now() + 30;
    pid_t w;
    while ((w = waitpid(p->pid, &status, WNOHANG)) == 0 && simproc_now() < end) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (w == 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
        fprintf(stderr, "simproc: simulator did not stop in time\n");
        rc = -1;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "simproc: simulator exit status %d\n", status);
        rc = -1;
    }
    if (p->ctl_fd >= 0)
        close(p->ctl_fd);
    p->ctl_fd = -1;
    p->pid = 0;
    FILE *f = fopen(p->log_path, "r");
    if (f) {
        static const char *const markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"};
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
                if (strstr(line, markers[i])) {
                    fprintf(stderr, "simproc: sanitizer report in %s: %s", p->log_path, line);
                    rc = -1;
                }
            }
        }
        fclose(f);
    }
    if (rc == 0)
        unlink(p->log_path);
    return rc;
}
