/* Shared pieces of the asyncfat command: messages, the common options, signals, small
 * helpers (see cli.h). */
#include "tools/cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t cli_interrupted;
cli_globals cli_global;

/* The first signal asks the command to stop between requests and leave the volume clean;
 * a command blocked where it does not look (a signal just before a blocking read) still
 * ends CLI_INTERRUPT_GRACE_S later (SIGALRM's default action), and a second signal ends it
 * at once. */
static void on_signal(int sig)
{
    if (cli_interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    cli_interrupted = sig;
    alarm(CLI_INTERRUPT_GRACE_S);
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_error(const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "asyncfat: %s: ", what);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail_status(const char *image, const char *path, fs_status st)
{
    char what[8300];
    snprintf(what, sizeof what, "%s:%s", image, path);
    cli_error(what, "%s", fs_status_string(st));
    return EXIT_FAILED;
}

const char *cli_errno_text(int err)
{
    static __thread char text[256];
    snprintf(text, sizeof text, "%s", strerror(err));
    /* "No such file or directory" -> "no such file or directory"; an acronym stays */
    if (isupper((unsigned char)text[0]) && !isupper((unsigned char)text[1]))
        text[0] = (char)tolower((unsigned char)text[0]);
    return text;
}

int cli_fail_errno(const char *path, int err)
{
    cli_error(path, "%s", cli_errno_text(err));
    return EXIT_FAILED;
}

int cli_usage(const char *cmd, const char *usage)
{
    fprintf(stderr, "usage: asyncfat %s %s\n(asyncfat %s --help for more)\n", cmd, usage, cmd);
    return EXIT_USAGE;
}

int cli_bad_option(const char *cmd, const char *usage, int ch, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    char name[64];
    if (strncmp(arg, "--", 2) == 0)
        snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    else
        snprintf(name, sizeof name, "-%c", optopt);
    cli_error(cmd, ch == ':' ? "option '%s' needs a value" : "unknown option '%s'", name);
    return cli_usage(cmd, usage);
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

bool cli_parse_size(const char *s, bool allow_sectors, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)s[0]))
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return false;
    uint64_t mult = 1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1ull << 10; end++; break;
    case 'm': case 'M': mult = 1ull << 20; end++; break;
    case 'g': case 'G': mult = 1ull << 30; end++; break;
    case 't': case 'T': mult = 1ull << 40; end++; break;
    case 's': case 'S':
        if (!allow_sectors)
            return false;
        mult = 512;
        end++;
        break;
    default: return false;
    }
    if (mult >= 1024 && *end == 'i' && end[1] == 'B')
        end += 2;
    else if (mult >= 1024 && *end == 'B')
        end++;
    if (*end != '\0' || v > UINT64_MAX / mult)
        return false;
    *out = v * mult;
    return true;
}

/* ---- the common options ---- */

/* The local zone's offset from UTC now, in minutes east (what vfat's default, the
 * kernel's time zone, is set from). */
static int32_t local_offset_minutes(void)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm))
        return 0;
    return (int32_t)(tm.tm_gmtoff / 60);
}

bool cli_parse_zone(const char *z, int32_t *minutes)
{
    if (strcasecmp(z, "utc") == 0 || strcasecmp(z, "gmt") == 0 || strcmp(z, "Z") == 0) {
        *minutes = 0;
        return true;
    }
    if (strcasecmp(z, "local") == 0) {
        *minutes = local_offset_minutes();
        return true;
    }
    if (z[0] != '+' && z[0] != '-')
        return false;
    int sign = z[0] == '-' ? -1 : 1;
    const char *p = z + 1;
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
        return false;
    int hours = (p[0] - '0') * 10 + (p[1] - '0'), mins = 0;
    p += 2;
    if (*p == ':')
        p++;
    if (*p) {
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2])
            return false;
        mins = (p[0] - '0') * 10 + (p[1] - '0');
    }
    if (hours > 24 || mins > 59 || hours * 60 + mins > 1440)
        return false;
    *minutes = sign * (hours * 60 + mins);
    return true;
}

bool cli_parse_minutes(const char *s, int32_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -1440 || v > 1440)
        return false;
    *out = (int32_t)v;
    return true;
}

/* The value of option `name` at argv[*i]: "--name=value" or "--name value" (or "-i
 * value"); NULL if argv[*i] is not that option. *i moves past what was used. */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

static bool has_mtools_operand(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return i + 1 < argc && strncmp(argv[i + 1], "::", 2) == 0;
        if (strncmp(argv[i], "::", 2) == 0)
            return true;
    }
    return false;
}

int cli_take_global_options(int *argc, char **argv)
{
    memset(&cli_global, 0, sizeof cli_global);
    cli_global.time_offset_minutes = local_offset_minutes();
    const char *cmd = argv[0];
    /* -i is mtools' image option, except where it is cp's own -i (interactive): there only
     * with a ::PATH operand beside it. */
    bool mtools = strcmp(cmd, "cp") != 0 || has_mtools_operand(*argc, argv);
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(a, "--version") == 0) {
            printf("asyncfat %s\n", ASYNCFAT_VERSION);
            return EXIT_OK;
        }
        if (strcmp(a, "--discard") == 0) {
            cli_global.discard = true;
            continue;
        }
        bool missing = false;
        const char *v;
        int at = i;
        if ((v = option_value(*argc, argv, &i, "--partition", &missing))) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (errno || end == v || *end || n < 1 || n > 4096 || v[0] == '-') {
                cli_error(cmd, "--partition '%s' is not a partition number (1, 2, ...)", v);
                return EXIT_USAGE;
            }
            cli_global.partition = (uint32_t)n;
        } else if ((v = option_value(*argc, argv, &i, "--offset", &missing))) {
            if (!cli_parse_size(v, true, &cli_global.offset) || cli_global.offset % 512 != 0) {
                cli_error(cmd, "--offset '%s' is not a byte offset that is a multiple of 512 (e.g. 1048576, "
                               "1M, 2048s)", v);
                return EXIT_USAGE;
            }
            cli_global.at_offset = true;
        } else if ((v = option_value(*argc, argv, &i, "--tz", &missing))) {
            if (!cli_parse_zone(v, &cli_global.time_offset_minutes)) {
                cli_error(cmd, "--tz '%s' is not a time zone (UTC, local, or an offset such as +05:30)", v);
                return EXIT_USAGE;
            }
        } else if ((v = option_value(*argc, argv, &i, "--time-offset", &missing))) {
            if (!cli_parse_minutes(v, &cli_global.time_offset_minutes)) {
                cli_error(cmd, "--time-offset '%s' is not a number of minutes from -1440 to 1440", v);
                return EXIT_USAGE;
            }
        } else if ((v = option_value(*argc, argv, &i, "--image", &missing)) ||
                   (mtools && (v = option_value(*argc, argv, &i, "-i", &missing)))) {
            cli_global.image = v;
        } else if (missing) {
            cli_error(cmd, "option '%s' needs a value", a);
            return EXIT_USAGE;
        } else {
            argv[out++] = argv[at];
        }
    }
    *argc = out;
    argv[out] = NULL;
    if (cli_global.partition && cli_global.at_offset) {
        cli_error(cmd, "--partition and --offset both say where the volume is: give one");
        return EXIT_USAGE;
    }
    return -1;
}

/* ---- paths ---- */

bool cli_join(char *out, size_t size, const char *dir, const char *name)
{
    size_t n = strlen(dir);
    int len = snprintf(out, size, n > 0 && dir[n - 1] == '/' ? "%s%s" : "%s/%s", dir, name);
    return len >= 0 && (size_t)len < size;
}

const char *cli_basename(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/')
        start--;
    if (start == n) /* the root, or nothing */
        return n ? "/" : "";
    /* The last component alone, so a path of any length has its own. */
    static __thread char buf[4096];
    snprintf(buf, sizeof buf, "%.*s", (int)(n - start), path + start);
    return buf;
}

bool cli_is_dir_stat(const fs_stat *st) { return (st->mode & FS_MODE_TYPE_MASK) == FS_MODE_DIRECTORY; }
