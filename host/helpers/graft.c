/*
 * dscan-graft: run a command in a private view of another container's root
 * filesystem, with directories of this container grafted in (DESIGN §6.2).
 *
 *   dscan-graft PID SRC:DST... -- COMMAND [ARG...]
 *
 * 1. Clone each SRC of this container with open_tree(OPEN_TREE_CLONE): a
 *    detached copy of the mount that survives the namespace switch.
 * 2. setns into PID's mount namespace, then unshare a private copy of it, so
 *    nothing below is visible to the target.
 * 3. Clone the target's own submounts (/proc, /dev, volumes, /etc/hosts…).
 * 4. Cover /proc (private copy only) with a tmpfs that holds the overlay's
 *    upper and work directories, and mount an overlay of the target's root
 *    filesystem at /proc/root: writes (mount points, the scanner's own files)
 *    land in the tmpfs, never in the target.
 * 5. Move the target's submounts, then the grafts, into the view; chroot into
 *    it and exec COMMAND with plain local access.
 *
 * The target's files and mount table stay unchanged. setns(CLONE_NEWNS)
 * refuses multithreaded callers, hence a small single-threaded C program.
 * Exit status 125 means the helper itself failed (the message says why);
 * otherwise it is COMMAND's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

#define HELPER_FAILED 125
#define MAX_MOUNTS 256
#define VIEW "/proc/root"

static void die(const char *fmt, ...) {
    va_list ap;
    fputs("dscan-graft: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(HELPER_FAILED);
}

static int clone_tree(const char *path) {
    return (int)syscall(SYS_open_tree, AT_FDCWD, path,
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
}

static int move_tree(int fd, const char *to) {
    return (int)syscall(SYS_move_mount, fd, "", AT_FDCWD, to, MOVE_MOUNT_F_EMPTY_PATH);
}

/* mkdir -p inside the view (the overlay: new entries go to the tmpfs). */
static void make_dirs(const char *path) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) die("path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) die("mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) die("mkdir %s: %s", buf, strerror(errno));
}

/* A mount point for fd at path: a directory, or an empty file for a file mount. */
static void make_mount_point(int fd, const char *path) {
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat: %s", strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        make_dirs(path);
        return;
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        make_dirs(parent);
    }
    int f = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) die("create mount point %s: %s", path, strerror(errno));
    close(f);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s) {
    char *out = s;
    for (char *in = s; *in; in++) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '7' && in[2] >= '0' && in[2] <= '7' &&
            in[3] >= '0' && in[3] <= '7') {
            *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 3;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
}

struct submount {
    char path[PATH_MAX];
    int fd;
};

/* The mounts directly below the root mount of this (private) namespace. */
static int target_submounts(struct submount *out) {
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) die("read the target's mount table: %s", strerror(errno));
    char line[8192];
    int root_id = -1, n = 0;
    int parents[MAX_MOUNTS];
    static char points[MAX_MOUNTS][PATH_MAX];
    int count = 0;
    while (fgets(line, sizeof line, f) && count < MAX_MOUNTS) {
        int id, parent;
        char point[PATH_MAX];
        if (sscanf(line, "%d %d %*s %*s %4095s", &id, &parent, point) != 3) continue;
        unescape(point);
        if (strcmp(point, "/") == 0) {
            root_id = id; /* the last mount on / is the root seen by paths */
            continue;
        }
        parents[count] = parent;
        snprintf(points[count], PATH_MAX, "%s", point);
        count++;
    }
    fclose(f);
    if (root_id < 0) die("the target's mount table has no root mount");
    for (int i = 0; i < count; i++) {
        if (parents[i] != root_id) continue;
        int seen = 0;
        for (int j = 0; j < n; j++)
            if (strcmp(out[j].path, points[i]) == 0) seen = 1;
        if (seen) continue;
        int fd = clone_tree(points[i]);
        if (fd < 0) die("clone the target's mount %s: %s", points[i], strerror(errno));
        snprintf(out[n].path, PATH_MAX, "%s", points[i]);
        out[n].fd = fd;
        n++;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 4) die("usage: dscan-graft PID SRC:DST... -- COMMAND [ARG...]");
    char *end;
    long pid = strtol(argv[1], &end, 10);
    if (*end || pid <= 0) die("not a PID: %s", argv[1]);

    int sep = 0;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            sep = i;
            break;
        }
    if (!sep || sep + 1 >= argc) die("no command after --");

    int grafts = sep - 2;
    if (grafts > 64) die("too many grafts");
    int graft_fd[64];
    char *graft_dst[64];
    for (int i = 0; i < grafts; i++) {
        char *spec = argv[2 + i];
        char *colon = strchr(spec, ':');
        if (!colon || spec[0] != '/' || colon[1] != '/') die("graft must be /SRC:/DST, got %s", spec);
        *colon = '\0';
        graft_dst[i] = colon + 1;
        if (strstr(graft_dst[i], "/..") || strcmp(graft_dst[i], "/") == 0)
            die("graft destination must be a plain path below /: %s", graft_dst[i]);
        graft_fd[i] = clone_tree(spec);
        if (graft_fd[i] < 0) die("clone %s of this container: %s", spec, strerror(errno));
    }

    char ns_path[64];
    snprintf(ns_path, sizeof ns_path, "/proc/%ld/ns/mnt", pid);
    struct stat mine, theirs;
    if (stat("/proc/self/ns/mnt", &mine) != 0) die("stat /proc/self/ns/mnt: %s", strerror(errno));
    if (stat(ns_path, &theirs) != 0)
        die("cannot reach %s (needs CAP_SYS_PTRACE or the target's UID): %s", ns_path, strerror(errno));
    if (mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev)
        die("PID %ld shares this container's mount namespace: it is not the target", pid);
    int ns = open(ns_path, O_RDONLY | O_CLOEXEC);
    if (ns < 0) die("open %s: %s", ns_path, strerror(errno));
    if (setns(ns, CLONE_NEWNS) != 0)
        die("setns into the target's mount namespace (needs CAP_SYS_ADMIN and CAP_SYS_CHROOT): %s",
            strerror(errno));
    close(ns);
    if (unshare(CLONE_NEWNS) != 0) die("unshare a private mount namespace: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die("make the private mount namespace private: %s", strerror(errno));
    if (chdir("/") != 0) die("chdir /: %s", strerror(errno));

    static struct submount subs[MAX_MOUNTS];
    int nsubs = target_submounts(subs);
    for (int i = 0; i < grafts; i++)
        for (int j = 0; j < nsubs; j++) {
            size_t len = strlen(subs[j].path);
            if (strncmp(graft_dst[i], subs[j].path, len) == 0 &&
                (graft_dst[i][len] == '/' || graft_dst[i][len] == '\0'))
                die("graft destination %s lies in the target's mount %s; making its mount point "
                    "would write into the target: choose another destination",
                    graft_dst[i], subs[j].path);
        }

    struct stat proc;
    if (stat("/proc", &proc) != 0 || !S_ISDIR(proc.st_mode)) die("the target has no /proc directory");
    if (mount("dscan-graft", "/proc", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0)
        die("mount the scratch tmpfs: %s", strerror(errno));
    if (mkdir("/proc/upper", 0755) != 0 || mkdir("/proc/work", 0700) != 0 || mkdir(VIEW, 0755) != 0)
        die("prepare the overlay directories: %s", strerror(errno));
    if (mount("overlay", VIEW, "overlay", 0, "lowerdir=/,upperdir=/proc/upper,workdir=/proc/work") != 0)
        die("mount the overlay view of the target's root: %s", strerror(errno));

    char to[PATH_MAX];
    for (int i = 0; i < nsubs; i++) {
        snprintf(to, sizeof to, "%s%s", VIEW, subs[i].path);
        make_mount_point(subs[i].fd, to);
        if (move_tree(subs[i].fd, to) != 0) die("mount %s into the view: %s", subs[i].path, strerror(errno));
        close(subs[i].fd);
    }
    for (int i = 0; i < grafts; i++) {
        snprintf(to, sizeof to, "%s%s", VIEW, graft_dst[i]);
        make_mount_point(graft_fd[i], to);
        if (move_tree(graft_fd[i], to) != 0) die("graft %s into the view: %s", graft_dst[i], strerror(errno));
        close(graft_fd[i]);
    }

    if (chdir(VIEW) != 0 || chroot(".") != 0 || chdir("/") != 0)
        die("enter the view: %s", strerror(errno));
    execvp(argv[sep + 1], argv + sep + 1);
    fprintf(stderr, "dscan-graft: exec %s: %s\n", argv[sep + 1], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
