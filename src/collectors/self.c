/* SPDX-License-Identifier: Apache-2.0 */
#include "collectors/self.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "poh_version.h"

static void gauge(poh_registry_t *r, poh_metric_type_t t, const char *name, const char *help,
                  double v)
{
    poh_family_t *f = poh_registry_family(r, t, name, help, 0, NULL, NULL, 0);
    if (!f)
        return;
    poh_series_t *s = poh_family_series(f, NULL);
    if (!s)
        return;
    if (t == POH_COUNTER)
        poh_counter_add(s, v);
    else
        poh_gauge_set(s, v);
}

double poh_self_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    double bt = -1;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    }
    fclose(f);
    return bt;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

int poh_self_metrics(poh_registry_t *r, double boot_time)
{
    static const char *const bl[] = {"version", "revision"};
    static const char *const bv[] = {POH_VERSION, POH_REVISION};
    poh_family_t *bi = poh_registry_family(
        r, POH_GAUGE, "poh_exporter_build_info",
        "A metric with a constant '1' value labeled by version and revision of poh_exporter.",
        2, bl, NULL, 0);
    if (bi)
        poh_gauge_set(poh_family_series(bi, bv), 1);

    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -errno;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may itself hold spaces and ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long starttime = 0;
    long rss = 0;
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d "
                     "%*d %llu %lu %ld",
                     &utime, &stime, &starttime, &vsize, &rss);
    if (got != 5)
        return -EINVAL;
    double hz = (double)sysconf(_SC_CLK_TCK);
    double page = (double)sysconf(_SC_PAGESIZE);
    gauge(r, POH_COUNTER, "process_cpu_seconds_total",
          "Total user and system CPU time spent in seconds.", (double)(utime + stime) / hz);
    gauge(r, POH_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.",
          (double)rss * page);
    gauge(r, POH_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
          (double)vsize);
    double bt = boot_time;
    if (bt >= 0)
        gauge(r, POH_GAUGE, "process_start_time_seconds",
              "Start time of the process since unix epoch in seconds.",
              bt + (double)starttime / hz);
    int fds = count_fds();
    if (fds >= 0)
        gauge(r, POH_GAUGE, "process_open_fds", "Number of open file descriptors.", fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        gauge(r, POH_GAUGE, "process_max_fds", "Maximum number of open file descriptors.",
              rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
    return 0;
}
