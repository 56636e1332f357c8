/*
 * auth.h - the write token: where it comes from and how a request's
 * Authorization header is checked against it.
 */
#ifndef FACTSD_AUTH_H
#define FACTSD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

enum { FACTSD_TOKEN_MAX = 1024 };

/* Reads the write token from the file at path. The file must be a regular
 * file that neither its group nor others can read or write (mode 0600 or
 * stricter); its content, without trailing white space, must be 16 to
 * FACTSD_TOKEN_MAX characters of the token68 alphabet (RFC 7235: letters,
 * digits, "-._~+/" and trailing "="). Returns a new string owned by the
 * caller (free()), or NULL with a one-line reason in msg (size bytes). */
char *factsd_token_read_file(const char *path, char *msg, size_t size);

/* Checks a token given in the FACTSD_TOKEN environment variable by the same
 * rules. Returns a copy owned by the caller, or NULL with a reason in msg. */
char *factsd_token_from_env(const char *value, char *msg, size_t size);

/* Whether the Authorization header value (may be NULL) is "Bearer <token>"
 * (scheme case-insensitive) for token. The comparison takes time that
 * depends only on the length of the header, not on the token's content or
 * length. Never fails. */
bool factsd_token_check(const char *token, const char *authorization);

#endif /* FACTSD_AUTH_H */
