/*
 * openapi.h - the OpenAPI description (api/openapi.yaml converted to JSON at
 * build time) embedded in the server and published at /openapi.json.
 */
#ifndef FACTSD_OPENAPI_H
#define FACTSD_OPENAPI_H

#include <stddef.h>

/* The JSON bytes (NUL-terminated, static) and their length without the NUL. */
extern const unsigned char factsd_openapi_json[];
extern const size_t factsd_openapi_json_len;

#endif /* FACTSD_OPENAPI_H */
