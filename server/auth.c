/*
 * auth.c - the write token.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { TOKEN_MIN = 16 };

static bool token68_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/* Checks buf (len bytes, white space already trimmed) and copies it. */
static char *token_accept(const char *buf, size_t len, const char *what, char *msg, size_t size)
{
    size_t i = 0;
    while (i < len && token68_char(buf[i]))
        i++;
    while (i < len && buf[i] == '=')
        i++;
    if (len < TOKEN_MIN || len > FACTSD_TOKEN_MAX || i != len) {
        snprintf(msg, size,
                 "%s: the token must be %d to %d characters of letters, digits and -._~+/ "
                 "(optionally ending in =)", what, TOKEN_MIN, FACTSD_TOKEN_MAX);
        return NULL;
    }
    char *t = malloc(len + 1);
    if (!t) {
        snprintf(msg, size, "%s: out of memory", what);
        return NULL;
    }
    memcpy(t, buf, len);
    t[len] = '\0';
    return t;
}

static size_t trim_end(const char *buf, size_t len)
{
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    return len;
}

char *factsd_token_read_file(const char *path, char *msg, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(msg, size, "--token-file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(msg, size, "--token-file %s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(msg, size,
                 "--token-file %s: group or others may access it (mode %03o); "
                 "chmod 600 it", path, (unsigned)(sb.st_mode & 0777));
        close(fd);
        return NULL;
    }
    char buf[FACTSD_TOKEN_MAX + 64];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(msg, size, "--token-file %s: %s", path, strerror(errno));
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf) {
            snprintf(msg, size, "--token-file %s: longer than a token can be", path);
            close(fd);
            return NULL;
        }
    }
    close(fd);
    char *t = token_accept(buf, trim_end(buf, len), "--token-file", msg, size);
    memset(buf, 0, sizeof buf);
    return t;
}

char *factsd_token_from_env(const char *value, char *msg, size_t size)
{
    return token_accept(value, trim_end(value, strlen(value)), "FACTSD_TOKEN", msg, size);
}

bool factsd_token_check(const char *token, const char *authorization)
{
    if (!token || !authorization)
        return false;
    /* "Bearer" then one or more spaces, then the credentials. */
    static const char scheme[] = "bearer";
    for (size_t i = 0; i < sizeof scheme - 1; i++) {
        char c = authorization[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return false;
    }
    const char *given = authorization + sizeof scheme - 1;
    if (*given != ' ')
        return false;
    while (*given == ' ')
        given++;
    size_t lg = strlen(given), lt = strlen(token);
    while (lg > 0 && given[lg - 1] == ' ')
        lg--;
    /* Every byte of the given credentials is compared (against the token,
     * repeated), so the time depends on the header only. */
    volatile unsigned char diff = (unsigned char)(lg != lt);
    for (size_t i = 0; i < lg; i++)
        diff |= (unsigned char)(given[i] ^ token[i % lt]);
    return lg > 0 && diff == 0;
}
