/*
 * date.c - partial dates ("YYYY", "YYYY-MM", "YYYY-MM-DD") resolved to whole
 * days since 1970-01-01 in the proleptic Gregorian calendar.
 */
#include <string.h>

#include "internal.h"

/* Howard Hinnant's days_from_civil. */
int32_t facts_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const int yoe = y - era * 400;
    const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* Reads exactly n decimal digits at s into *out. */
static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool facts_date_parse_partial(const char *s, facts_precision *granularity,
                              int32_t *first, int32_t *last, bool *calendar_ok)
{
    int y = 0, m = 0, d = 0;
    size_t n = strlen(s);
    *calendar_ok = true;
    if (n == 4 && digits(s, 4, &y)) {
        *granularity = FACTS_PRECISION_YEAR;
    } else if (n == 7 && digits(s, 4, &y) && s[4] == '-' && digits(s + 5, 2, &m)) {
        *granularity = FACTS_PRECISION_MONTH;
    } else if (n == 10 && digits(s, 4, &y) && s[4] == '-' && digits(s + 5, 2, &m) &&
               s[7] == '-' && digits(s + 8, 2, &d)) {
        *granularity = FACTS_PRECISION_DAY;
    } else {
        return false;
    }
    if (y < 1000 || (*granularity != FACTS_PRECISION_YEAR && (m < 1 || m > 12)) ||
        (*granularity == FACTS_PRECISION_DAY && (d < 1 || d > days_in_month(y, m)))) {
        *calendar_ok = false;
        return false;
    }
    switch (*granularity) {
    case FACTS_PRECISION_YEAR:
        *first = facts_days_from_civil(y, 1, 1);
        *last = facts_days_from_civil(y, 12, 31);
        break;
    case FACTS_PRECISION_MONTH:
        *first = facts_days_from_civil(y, m, 1);
        *last = facts_days_from_civil(y, m, days_in_month(y, m));
        break;
    default:
        *first = *last = facts_days_from_civil(y, m, d);
        break;
    }
    return true;
}

facts_status facts_date_parse(const char *s, bool last, int32_t *day)
{
    facts_precision g;
    int32_t a, b;
    bool cal;
    if (!s || !facts_date_parse_partial(s, &g, &a, &b, &cal))
        return FACTS_EARG;
    *day = last ? b : a;
    return FACTS_OK;
}
