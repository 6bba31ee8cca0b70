/*
 * ISO 8601 / RFC 3339 date-times as token endpoints send them, e.g. the
 * 2012 endpoint's "9999-12-31T23:59:59.9970000". The epoch value is computed
 * from the civil date directly (no timegm, no time_t range limits).
 */
#include "protocol/protocol.h"

/* Reads exactly `count` digits at s[*pos]. */
static int digits(const char *s, size_t n, size_t *pos, int count, int *out) {
    int v = 0, i;
    for (i = 0; i < count; i++) {
        if (*pos >= n || s[*pos] < '0' || s[*pos] > '9')
            return -1;
        v = v * 10 + (s[(*pos)++] - '0');
    }
    *out = v;
    return 0;
}

static int expect(const char *s, size_t n, size_t *pos, char c) {
    if (*pos >= n || s[*pos] != c)
        return -1;
    (*pos)++;
    return 0;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static long days_from_civil(long y, long m, long d) {
    long era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int avl_parse_datetime(const char *s, size_t n, double *epoch) {
    size_t pos = 0;
    int year, month, day, hour, minute, second, oh = 0, om = 0, sign = 0;
    double fraction = 0;
    if (digits(s, n, &pos, 4, &year) || expect(s, n, &pos, '-') ||
        digits(s, n, &pos, 2, &month) || expect(s, n, &pos, '-') ||
        digits(s, n, &pos, 2, &day))
        return -1;
    if (pos >= n || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
        return -1;
    pos++;
    if (digits(s, n, &pos, 2, &hour) || expect(s, n, &pos, ':') ||
        digits(s, n, &pos, 2, &minute) || expect(s, n, &pos, ':') ||
        digits(s, n, &pos, 2, &second))
        return -1;
    if (pos < n && s[pos] == '.') {
        double scale = 1;
        pos++;
        if (pos >= n || s[pos] < '0' || s[pos] > '9')
            return -1;
        /* Any number of digits (.NET sends seven); only 9 matter. */
        for (; pos < n && s[pos] >= '0' && s[pos] <= '9'; pos++) {
            if (scale < 1e9) {
                scale *= 10;
                fraction += (s[pos] - '0') / scale;
            }
        }
    }
    if (pos < n && (s[pos] == 'Z' || s[pos] == 'z')) {
        pos++;
    } else if (pos < n && (s[pos] == '+' || s[pos] == '-')) {
        sign = s[pos++] == '-' ? -1 : 1;
        if (digits(s, n, &pos, 2, &oh) || expect(s, n, &pos, ':') || digits(s, n, &pos, 2, &om))
            return -1;
        if (oh > 23 || om > 59)
            return -1;
    }
    if (pos != n)
        return -1;
    /* A leap second (60) is allowed by RFC 3339; it counts as the next second. */
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 60)
        return -1;
    *epoch = (double)days_from_civil(year, month, day) * 86400.0 + hour * 3600.0 +
             minute * 60.0 + second + fraction - sign * (oh * 3600.0 + om * 60.0);
    return 0;
}
