/*
 * dashboard.h - the dashboard page (server/dashboard/: HTML, script, style)
 * embedded at build time and served at /, /dashboard and /dashboard/app.*.
 */
#ifndef FACTSD_DASHBOARD_H
#define FACTSD_DASHBOARD_H

#include <stddef.h>

/* Each file's bytes (NUL-terminated, static) and length without the NUL. */
extern const unsigned char factsd_dashboard_html[];
extern const size_t factsd_dashboard_html_len;
extern const unsigned char factsd_dashboard_js[];
extern const size_t factsd_dashboard_js_len;
extern const unsigned char factsd_dashboard_css[];
extern const size_t factsd_dashboard_css_len;

#endif /* FACTSD_DASHBOARD_H */
