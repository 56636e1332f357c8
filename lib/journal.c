/*
 * journal.c - an append-only file of changes, each made durable before it is
 * acknowledged, and the atomic saving of a whole dataset.
 *
 * File layout: the 8-byte magic "FACTSJ1\n", then records
 *
 *   u32 length   payload bytes, little-endian
 *   u32 crc      CRC-32 (IEEE) of the revision bytes and the payload
 *   u64 revision little-endian; each record's is the previous one's + 1
 *   payload      length bytes
 *
 * Opening verifies every frame before replaying any. A frame that fails and
 * has no good frame anywhere after it is a torn tail (a crash mid-append):
 * the tail is saved aside and cut off. A failed frame followed by a good one
 * is damage in the middle: the open is refused with the byte offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MAGIC "FACTSJ1\n"
enum { MAGIC_LEN = 8, FRAME_HEAD = 16 };

struct facts_journal {
    int fd;
    char *path;
    uint64_t size;          /* bytes of good data: appends go here */
    uint64_t last_revision; /* 0 when empty */
    bool failed;            /* a write or sync failed: no more appends */
};

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t facts_crc32(const void *data, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    return crc_update(0, data, len);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

/* The CRC of a frame: revision bytes, then payload. */
static uint32_t frame_crc(const unsigned char *revision8, const unsigned char *payload, size_t n)
{
    uint32_t c = facts_crc32(revision8, 8);
    return crc_update(c, payload, n);
}

/* Is there a well-formed frame at off (length within bounds, CRC right)? */
static bool frame_ok(const unsigned char *buf, uint64_t size, uint64_t off, uint32_t *len)
{
    if (size - off < FRAME_HEAD)
        return false;
    uint32_t n = get_u32(buf + off);
    if (n > FACTS_JOURNAL_RECORD_MAX || size - off - FRAME_HEAD < n)
        return false;
    if (frame_crc(buf + off + 8, buf + off + FRAME_HEAD, n) != get_u32(buf + off + 4))
        return false;
    *len = n;
    return true;
}

static facts_status io_error(facts_error *err, const char *path, const char *what, int e)
{
    facts_status s = (e == ENOSPC || e == EDQUOT || e == EFBIG) ? FACTS_ENOSPC : FACTS_EIO;
    facts_error_set(err, s, path, 0, 0, "", s == FACTS_ENOSPC ? "no-space" : "io", "%s: %s",
                    what, strerror(e));
    return s;
}

/* Writes all of buf at off. Returns 0 or an errno value. */
static int write_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* fsync of the folder holding path, so a new or renamed entry is durable. */
static int sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        dir[0] = '.';
        dir[1] = '\0';
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof dir)
            return ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

/* Reads the whole file (at most FACTS_JOURNAL_MAX bytes). */
static facts_status read_whole(int fd, const char *path, unsigned char **out, uint64_t *size,
                               facts_error *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return io_error(err, path, "stat", errno);
    if ((uint64_t)sb.st_size > FACTS_JOURNAL_MAX) {
        facts_error_set(err, FACTS_ELIMIT, path, 0, 0, "", "limit",
                        "the journal is larger than %llu bytes: compact it",
                        (unsigned long long)FACTS_JOURNAL_MAX);
        return FACTS_ELIMIT;
    }
    size_t n = (size_t)sb.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        facts_error_set(err, FACTS_ENOMEM, path, 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(buf);
            return io_error(err, path, "read", e);
        }
        got += (size_t)r;
    }
    *out = buf;
    *size = n;
    return FACTS_OK;
}

/* Saves [off, size) of buf next to path and cuts the file back to off. */
static facts_status cut_tail(facts_journal *j, const unsigned char *buf, uint64_t size,
                             uint64_t off, facts_journal_report *report, facts_error *err)
{
    char aside[PATH_MAX];
    int n = snprintf(aside, sizeof aside, "%s.torn-%llu", j->path, (unsigned long long)off);
    if (n < 0 || (size_t)n >= sizeof aside) {
        facts_error_set(err, FACTS_EIO, j->path, 0, 0, "", "io", "path too long");
        return FACTS_EIO;
    }
    int fd = open(aside, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return io_error(err, aside, "save the torn tail", errno);
    int e = write_all(fd, buf + off, (size_t)(size - off), 0);
    if (!e && fsync(fd) != 0)
        e = errno;
    close(fd);
    if (e)
        return io_error(err, aside, "save the torn tail", e);
    if (ftruncate(j->fd, (off_t)off) != 0 || fdatasync(j->fd) != 0)
        return io_error(err, j->path, "cut the torn tail", errno);
    if (report) {
        report->torn_offset = off;
        report->torn_bytes = size - off;
        snprintf(report->torn_saved, sizeof report->torn_saved, "%s", aside);
    }
    return FACTS_OK;
}

facts_status facts_journal_open(const char *path, facts_journal_fn fn, void *ctx,
                                facts_journal **out, facts_journal_report *report,
                                facts_error *err)
{
    if (report)
        memset(report, 0, sizeof *report);
    facts_journal *j = calloc(1, sizeof *j);
    char *p = strdup(path);
    if (!j || !p) {
        free(j);
        free(p);
        facts_error_set(err, FACTS_ENOMEM, path, 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    j->path = p;
    bool created = false;
    j->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (j->fd >= 0)
        created = true;
    else if (errno == EEXIST)
        j->fd = open(path, O_RDWR | O_CLOEXEC);
    facts_status s = FACTS_OK;
    unsigned char *buf = NULL;
    uint64_t size = 0;
    if (j->fd < 0) {
        s = io_error(err, path, "open", errno);
        goto fail;
    }
    if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            facts_error_set(err, FACTS_EIO, path, 0, 0, "", "locked",
                            "another process has the journal open");
            s = FACTS_EIO;
        } else {
            s = io_error(err, path, "lock", e);
        }
        goto fail;
    }
    if ((s = read_whole(j->fd, path, &buf, &size, err)) != FACTS_OK)
        goto fail;

    /* The header: absent or cut short only by a crash during creation. */
    if (size < MAGIC_LEN && memcmp(buf, MAGIC, (size_t)size) == 0) {
        int e = write_all(j->fd, MAGIC, MAGIC_LEN, 0);
        if (!e && fdatasync(j->fd) != 0)
            e = errno;
        if (!e && created)
            e = sync_parent(path);
        if (e) {
            s = io_error(err, path, "create", e);
            goto fail;
        }
        size = 0;
        j->size = MAGIC_LEN;
    } else if (size < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0) {
        facts_error_set(err, FACTS_ECORRUPT, path, 0, 0, "", "journal",
                        "not a factsd journal (bad magic at byte offset 0)");
        s = FACTS_ECORRUPT;
        goto fail;
    } else {
        /* Pass 1: verify every frame, find a torn tail. */
        uint64_t off = MAGIC_LEN, prev = 0;
        size_t records = 0;
        while (off < size) {
            uint32_t n;
            if (!frame_ok(buf, size, off, &n)) {
                for (uint64_t later = off + 1; later + FRAME_HEAD <= size; later++) {
                    uint32_t m;
                    if (frame_ok(buf, size, later, &m)) {
                        facts_error_set(err, FACTS_ECORRUPT, path, 0, 0, "", "journal",
                                        "damaged record at byte offset %llu (good records "
                                        "follow at %llu): refusing to drop acknowledged "
                                        "writes", (unsigned long long)off,
                                        (unsigned long long)later);
                        s = FACTS_ECORRUPT;
                        goto fail;
                    }
                }
                if ((s = cut_tail(j, buf, size, off, report, err)) != FACTS_OK)
                    goto fail;
                size = off;
                break;
            }
            uint64_t rev = get_u64(buf + off + 8);
            if (records > 0 && rev != prev + 1) {
                facts_error_set(err, FACTS_ECORRUPT, path, 0, 0, "", "journal",
                                "record at byte offset %llu has revision %llu after %llu",
                                (unsigned long long)off, (unsigned long long)rev,
                                (unsigned long long)prev);
                s = FACTS_ECORRUPT;
                goto fail;
            }
            prev = rev;
            records++;
            off += FRAME_HEAD + n;
        }
        /* Pass 2: replay. */
        for (off = MAGIC_LEN; off < size;) {
            uint32_t n = get_u32(buf + off);
            uint64_t rev = get_u64(buf + off + 8);
            if (fn && (s = fn(ctx, rev, (const char *)buf + off + FRAME_HEAD, n, err)) != FACTS_OK)
                goto fail;
            j->last_revision = rev;
            if (report) {
                report->records++;
                report->last_revision = rev;
            }
            off += FRAME_HEAD + n;
        }
        j->size = size;
    }
    free(buf);
    *out = j;
    return FACTS_OK;
fail:
    free(buf);
    if (j->fd >= 0)
        close(j->fd);
    free(j->path);
    free(j);
    return s;
}

facts_status facts_journal_append(facts_journal *j, uint64_t revision, const char *payload,
                                  size_t len, facts_error *err)
{
    if (j->failed) {
        facts_error_set(err, FACTS_EIO, j->path, 0, 0, "", "io",
                        "an earlier write to the journal failed; restart to recover");
        return FACTS_EIO;
    }
    if (len > FACTS_JOURNAL_RECORD_MAX) {
        facts_error_set(err, FACTS_ELIMIT, j->path, 0, 0, "", "limit",
                        "a journal record holds at most %d bytes", FACTS_JOURNAL_RECORD_MAX);
        return FACTS_ELIMIT;
    }
    if (j->size + FRAME_HEAD + len > FACTS_JOURNAL_MAX) {
        /* A journal past this size could not be opened again. */
        facts_error_set(err, FACTS_ENOSPC, j->path, 0, 0, "", "journal-full",
                        "the journal would grow past %llu bytes: compact it",
                        (unsigned long long)FACTS_JOURNAL_MAX);
        return FACTS_ENOSPC;
    }
    if (j->last_revision && revision != j->last_revision + 1) {
        facts_error_set(err, FACTS_EARG, j->path, 0, 0, "", "argument",
                        "revision %llu does not follow %llu", (unsigned long long)revision,
                        (unsigned long long)j->last_revision);
        return FACTS_EARG;
    }
    unsigned char *frame = malloc(FRAME_HEAD + len);
    if (!frame) {
        facts_error_set(err, FACTS_ENOMEM, j->path, 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    put_u32(frame, (uint32_t)len);
    put_u64(frame + 8, revision);
    memcpy(frame + FRAME_HEAD, payload, len);
    put_u32(frame + 4, frame_crc(frame + 8, frame + FRAME_HEAD, len));
    int e = write_all(j->fd, frame, FRAME_HEAD + len, j->size);
    free(frame);
    if (e) {
        facts_status s = io_error(err, j->path, "append", e);
        /* Trim back to the record boundary; the file stays usable unless
         * even that fails. */
        if (ftruncate(j->fd, (off_t)j->size) != 0 || s != FACTS_ENOSPC)
            j->failed = true;
        return s;
    }
    if (fdatasync(j->fd) != 0) {
        /* After a failed sync the kernel may have dropped the dirty pages:
         * nothing about the file can be trusted until it is read again. */
        e = errno;
        j->failed = true;
        if (ftruncate(j->fd, (off_t)j->size) == 0)
            (void)fdatasync(j->fd);
        return io_error(err, j->path, "sync", e);
    }
    j->size += FRAME_HEAD + len;
    j->last_revision = revision;
    return FACTS_OK;
}

bool facts_journal_failed(const facts_journal *j)
{
    return j->failed;
}

uint64_t facts_journal_revision(const facts_journal *j)
{
    return j->last_revision;
}

void facts_journal_close(facts_journal *j)
{
    if (!j)
        return;
    close(j->fd);
    free(j->path);
    free(j);
}

facts_status facts_file_replace(const char *path, const char *data, size_t len,
                                facts_error *err)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        facts_error_set(err, FACTS_EIO, path, 0, 0, "", "io", "path too long");
        return FACTS_EIO;
    }
    int fd = mkstemp(tmp);
    if (fd < 0)
        return io_error(err, path, "create a temporary file", errno);
    int e = write_all(fd, data, len, 0);
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e) {
        unlink(tmp);
        return io_error(err, path, "write", e);
    }
    if ((e = sync_parent(path)) != 0)
        return io_error(err, path, "sync the folder", e);
    return FACTS_OK;
}

facts_status facts_store_save(const facts_store *store, const char *path, facts_error *err)
{
    char *text = json_dumps(store->json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) {
        facts_error_set(err, FACTS_ENOMEM, path, 0, 0, "", "memory", "out of memory");
        return FACTS_ENOMEM;
    }
    size_t n = strlen(text);
    if (n > FACTS_FILE_MAX) {
        free(text);
        facts_error_set(err, FACTS_ELIMIT, path, 0, 0, "", "limit",
                        "the dataset is larger than %d bytes and could not be loaded again",
                        FACTS_FILE_MAX);
        return FACTS_ELIMIT;
    }
    facts_status s = facts_file_replace(path, text, n, err);
    free(text);
    return s;
}

facts_status facts_journal_reset(facts_journal *j, facts_error *err)
{
    /* A fresh file renamed over the old one: a crash leaves either. */
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.new", j->path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        facts_error_set(err, FACTS_EIO, j->path, 0, 0, "", "io", "path too long");
        return FACTS_EIO;
    }
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return io_error(err, tmp, "create", errno);
    int e = write_all(fd, MAGIC, MAGIC_LEN, 0);
    if (!e && fsync(fd) != 0)
        e = errno;
    if (!e && flock(fd, LOCK_EX | LOCK_NB) != 0)
        e = errno;
    if (!e && rename(tmp, j->path) != 0)
        e = errno;
    if (e) {
        close(fd);
        unlink(tmp);
        return io_error(err, j->path, "start a fresh journal", e);
    }
    /* The new file is in place: from here on it is the journal. */
    close(j->fd);
    j->fd = fd;
    j->size = MAGIC_LEN;
    if ((e = sync_parent(j->path)) != 0) {
        j->failed = true;
        return io_error(err, j->path, "sync the folder", e);
    }
    return FACTS_OK;
}
