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
 * 6. Before exec, drop to the target's own privileges: its UID, GID and
 *    groups; no capability but CAP_DAC_READ_SEARCH, and that only for a root
 *    target that itself holds DAC_OVERRIDE or DAC_READ_SEARCH (the bounding
 *    set is cut to match, so exec regains nothing); no_new_privs; a seccomp
 *    filter refusing mounts, namespaces, ptrace, module and kexec loading,
 *    bpf, handle-based opens, keyrings and the like. The program exec'd runs
 *    in the target's view, so its loader, libraries and PATH lookups may come
 *    from the target: whatever runs must never hold more than the target
 *    itself does.
 *
 * Mount points are made by walking the view one component at a time without
 * following symlinks and without crossing into another mount (a target's
 * `/opt -> /data/opt` would otherwise lead the graft into its volume).
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
#include <elf.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
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
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif

#define HELPER_FAILED 125
#define MAX_MOUNTS 256
#define VIEW "/proc/root"

static void vreport(int code, const char *fmt, va_list ap) {
    fputs("dscan-graft: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    exit(code);
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(HELPER_FAILED, fmt, ap);
}

/* The command cannot or must not run: 127 when it is missing, 126 otherwise (as a shell's exec). */
static void cannot_run(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(code, fmt, ap);
}

static int clone_tree(const char *path) {
    return (int)syscall(SYS_open_tree, AT_FDCWD, path,
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
}

static int move_tree(int fd, int to) {
    return (int)syscall(SYS_move_mount, fd, "", to, "",
                        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

/*
 * Opens the mount point for fd at `rel` below the directory `root` (an
 * O_PATH descriptor of the view), creating what is missing: directories, and
 * an empty file when fd is a file mount. One component at a time, never
 * following a symlink, never crossing into another mount (st_dev must stay
 * the view's): a symlink or a volume on the way is refused. Returns an
 * O_PATH descriptor of the mount point, for move_mount without re-resolving.
 */
static int open_mount_point(int root, const char *rel, int src) {
    struct stat st, view;
    if (fstat(src, &st) != 0) die("fstat: %s", strerror(errno));
    if (fstat(root, &view) != 0) die("fstat the view: %s", strerror(errno));
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", rel) >= (int)sizeof buf) die("path too long: %s", rel);
    int dir = dup(root);
    if (dir < 0) die("dup: %s", strerror(errno));
    char *save = NULL;
    char *part = strtok_r(buf, "/", &save);
    if (!part) die("empty mount point");
    while (part) {
        char *next = strtok_r(NULL, "/", &save);
        if (strcmp(part, "..") == 0 || strcmp(part, ".") == 0) die("mount point %s is not a plain path", rel);
        int last = next == NULL;
        int want_dir = !last || S_ISDIR(st.st_mode);
        struct stat here;
        if (fstatat(dir, part, &here, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) die("stat %s in %s: %s", part, rel, strerror(errno));
            if (want_dir) {
                if (mkdirat(dir, part, 0755) != 0 && errno != EEXIST)
                    die("mkdir %s in %s: %s", part, rel, strerror(errno));
            } else {
                int f = openat(dir, part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (f < 0) die("create mount point %s: %s", rel, strerror(errno));
                close(f);
            }
            if (fstatat(dir, part, &here, AT_SYMLINK_NOFOLLOW) != 0)
                die("stat %s in %s: %s", part, rel, strerror(errno));
        }
        if (S_ISLNK(here.st_mode))
            die("%s in the mount point %s is a symlink in the target; dscan does not follow the "
                "target's links when grafting (choose another destination)", part, rel);
        if (want_dir ? !S_ISDIR(here.st_mode) : !S_ISREG(here.st_mode))
            die("%s in the mount point %s is not a %s in the target", part, rel,
                want_dir ? "directory" : "regular file");
        /* overlayfs reports its own st_dev for directories only. */
        if (S_ISDIR(here.st_mode) && here.st_dev != view.st_dev)
            die("the mount point %s lies in one of the target's own mounts (at %s); making it "
                "would write into the target: choose another destination", rel, part);
        int fd = openat(dir, part, O_PATH | O_NOFOLLOW | O_CLOEXEC | (want_dir ? O_DIRECTORY : 0));
        if (fd < 0) die("open %s in %s: %s", part, rel, strerror(errno));
        close(dir);
        dir = fd;
        part = next;
    }
    return dir;
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

/* The mounts directly below the root mount of this (private) namespace.
 * `self` is this process's /proc/self, opened before setns: the target's
 * /proc belongs to its own PID namespace, where this process has no entry
 * when it came from a hostPID pod (the node-debug fallback). */
static int target_submounts(int self, struct submount *out) {
    int fd = openat(self, "mountinfo", O_RDONLY | O_CLOEXEC);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "re");
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

/* The target process's credentials, from /proc/PID/status. */
struct creds {
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int ngroups;
    unsigned long long cap_eff;
};

static void read_creds(long pid, struct creds *c) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "re");
    if (!f) die("read %s: %s", path, strerror(errno));
    char line[4096];
    int have = 0;
    memset(c, 0, sizeof *c);
    while (fgets(line, sizeof line, f)) {
        unsigned a, b;
        if (sscanf(line, "Uid: %u %u", &a, &b) == 2) {
            c->uid = b; /* the effective UID */
            have |= 1;
        } else if (sscanf(line, "Gid: %u %u", &a, &b) == 2) {
            c->gid = b;
            have |= 2;
        } else if (sscanf(line, "CapEff: %llx", &c->cap_eff) == 1) {
            have |= 4;
        } else if (strncmp(line, "Groups:", 7) == 0) {
            char *p = line + 7, *end;
            while (c->ngroups < 64) {
                unsigned long g = strtoul(p, &end, 10);
                if (end == p) break;
                c->groups[c->ngroups++] = (gid_t)g;
                p = end;
            }
        }
    }
    fclose(f);
    if (have != 7) die("%s does not say the target's UID, GID and capabilities", path);
}

#if defined(__x86_64__)
#define DSCAN_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define DSCAN_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "dscan-graft has no seccomp filter for this architecture"
#endif

/* Syscalls the scanner never needs and a hostile loader would like. */
static const int denied[] = {
    __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot, __NR_setns, __NR_unshare,
    __NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev, __NR_kexec_load,
    __NR_init_module, __NR_finit_module, __NR_delete_module, __NR_bpf, __NR_perf_event_open,
    __NR_open_by_handle_at, __NR_name_to_handle_at, __NR_keyctl, __NR_add_key,
    __NR_request_key, __NR_userfaultfd, __NR_swapon, __NR_swapoff, __NR_reboot, __NR_acct,
    __NR_quotactl,
#ifdef __NR_kexec_file_load
    __NR_kexec_file_load,
#endif
#ifdef __NR_open_tree
    __NR_open_tree, __NR_move_mount, __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick,
#endif
#ifdef __NR_mount_setattr
    __NR_mount_setattr,
#endif
#ifdef __NR_iopl
    __NR_iopl, __NR_ioperm,
#endif
};

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | \
                  CLONE_NEWIPC | CLONE_NEWCGROUP)

static void install_seccomp(void) {
    struct sock_filter f[128];
    unsigned n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DSCAN_AUDIT_ARCH, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
    /* x32 system calls would bypass the numbers below. */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
    for (unsigned i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied[i], 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
#ifdef __NR_clone3
    /* clone3 passes its flags in memory the filter cannot read: make libc
     * fall back to clone, whose flags it can. */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
#endif
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    if (n > sizeof f / sizeof f[0]) die("seccomp filter too long");
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        die("install the seccomp filter: %s", strerror(errno));
}

/* Step 6: the target's UID, GID and groups; at most CAP_DAC_READ_SEARCH
 * (root targets that can read everything themselves); no_new_privs; seccomp. */
/* Whether the resolved absolute `path` lies in one of the grafts. */
static int in_graft(const char *path, char *const *dst, int n) {
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dst[i]);
        if (strncmp(path, dst[i], len) == 0 && (path[len] == '/' || path[len] == '\0')) return 1;
    }
    return 0;
}

/* Whether the ELF image in `fd` names an interpreter (is dynamically linked). */
static int has_interpreter(int fd, const char *path) {
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh) die("%s: truncated ELF header", path);
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256)
        die("%s: not a 64-bit ELF program this helper can check", path);
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)i * sizeof ph)) != (ssize_t)sizeof ph)
            die("%s: truncated program headers", path);
        if (ph.p_type == PT_INTERP) return 1;
    }
    return 0;
}

/*
 * Resolves `path` in the view and refuses anything that would run code of
 * the target (see 7 above). `out` receives the resolved path.
 */
static void check_runnable(const char *path, char *const *dst, int n, int depth, char *out) {
    if (path[0] != '/')
        cannot_run(126, "the command %s is not an absolute path: looking it up in PATH would search the target's "
            "directories; name the scanner by its absolute path in the scanner image", path);
    char real[PATH_MAX];
    if (!realpath(path, real))
        cannot_run(errno == ENOENT ? 127 : 126, "%s: %s in the view", path, strerror(errno));
    if (!in_graft(real, dst, n))
        cannot_run(126, "%s resolves to %s, which belongs to the target, not to the scanner image: "
            "nothing of the target runs in the scanner", path, real);
    int fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) die("open %s: %s", real, strerror(errno));
    char head[256];
    ssize_t got = pread(fd, head, sizeof head - 1, 0);
    if (got < 0) die("read %s: %s", real, strerror(errno));
    head[got] = '\0';
    if (got >= 2 && head[0] == '#' && head[1] == '!') {
        if (depth > 0) cannot_run(126, "%s: the interpreter of a script is itself a script; name a static program", real);
        char *p = head + 2;
        while (*p == ' ' || *p == '\t') p++;
        size_t len = strcspn(p, " \t\r\n");
        if (len == 0 || p[len] == '\0') die("%s: unreadable #! line", real);
        p[len] = '\0';
        check_runnable(p, dst, n, depth + 1, NULL);
    } else if (got >= 4 && memcmp(head, ELFMAG, SELFMAG) == 0) {
        if (has_interpreter(fd, real))
            cannot_run(126, "%s is dynamically linked: in the target's view its ELF interpreter, /etc/ld.so.preload and "
                "libraries would be the target's, and planted code would run in the scanner. graft runs "
                "only static scanners; use a statically linked scanner or another strategy", real);
    } else {
        cannot_run(126, "%s is neither an ELF program nor a #! script", real);
    }
    close(fd);
    if (out) memcpy(out, real, strlen(real) + 1);
}

static void drop_privileges(const struct creds *t) {
    int read_all = t->uid == 0 &&
                   (t->cap_eff & ((1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_DAC_READ_SEARCH)));
    for (int cap = 0; cap <= 63; cap++) {
        if (read_all && cap == CAP_DAC_READ_SEARCH) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            die("drop capability %d from the bounding set: %s", cap, strerror(errno));
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        die("clear ambient capabilities: %s", strerror(errno));
    if (setgroups((size_t)t->ngroups, t->groups) != 0) die("setgroups: %s", strerror(errno));
    if (setresgid(t->gid, t->gid, t->gid) != 0) die("setresgid %u: %s", t->gid, strerror(errno));
    if (setresuid(t->uid, t->uid, t->uid) != 0) die("setresuid %u: %s", t->uid, strerror(errno));
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (read_all) d[0].effective = d[0].permitted = 1U << CAP_DAC_READ_SEARCH;
    if (syscall(SYS_capset, &h, d) != 0) die("capset: %s", strerror(errno));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs: %s", strerror(errno));
    install_seccomp();
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

    struct creds target;
    read_creds(pid, &target);

    char ns_path[64];
    snprintf(ns_path, sizeof ns_path, "/proc/%ld/ns/mnt", pid);
    struct stat mine, theirs;
    if (stat("/proc/self/ns/mnt", &mine) != 0) die("stat /proc/self/ns/mnt: %s", strerror(errno));
    if (stat(ns_path, &theirs) != 0)
        die("cannot reach %s (needs CAP_SYS_PTRACE or the target's UID): %s", ns_path, strerror(errno));
    if (mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev)
        die("PID %ld shares this container's mount namespace: it is not the target", pid);
    int self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (self < 0) die("open /proc/self: %s", strerror(errno));
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
    int nsubs = target_submounts(self, subs);
    close(self);
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

    int view = open(VIEW, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (view < 0) die("open the view: %s", strerror(errno));
    for (int i = 0; i < nsubs; i++) {
        int to = open_mount_point(view, subs[i].path + 1, subs[i].fd);
        if (move_tree(subs[i].fd, to) != 0) die("mount %s into the view: %s", subs[i].path, strerror(errno));
        close(to);
        close(subs[i].fd);
    }
    for (int i = 0; i < grafts; i++) {
        int to = open_mount_point(view, graft_dst[i] + 1, graft_fd[i]);
        if (move_tree(graft_fd[i], to) != 0) die("graft %s into the view: %s", graft_dst[i], strerror(errno));
        close(to);
        close(graft_fd[i]);
    }

    if (fchdir(view) != 0 || chroot(".") != 0 || chdir("/") != 0)
        die("enter the view: %s", strerror(errno));
    close(view);
    char program[PATH_MAX];
    check_runnable(argv[sep + 1], graft_dst, grafts, 0, program);
    drop_privileges(&target);
    execv(program, argv + sep + 1);
    fprintf(stderr, "dscan-graft: exec %s: %s\n", argv[sep + 1], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
