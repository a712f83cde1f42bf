/* INCRBYFLOAT's arithmetic as Redis does it: parse with strtold (Redis's string2ld),
 * add in long double, print with "%.17Lf" and strip trailing zeros (Redis's ld2string
 * in LD_STR_HUMAN mode). C's long double has no equivalent in Rust, so this file is
 * the one place sessiond computes in it. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

/* Parse s[0..len) like Redis's string2ld: 1 on success. */
static int parse_ld(const char *s, size_t len, long double *out) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    char *eptr;
    long double value;
    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' ||
        (size_t)(eptr - buf) != len ||
        (errno == ERANGE && (value == HUGE_VALL || value == -HUGE_VALL ||
                             fpclassify(value) == FP_ZERO)) ||
        isnan(value))
        return 0;
    *out = value;
    return 1;
}

/* 1: both parsed, out holds the sum's text (length in *outlen);
 * -1: `cur` is not a float; -2: `incr` is not a float;
 * -3: the sum is NaN or infinite; -4: no room. `cur` may be NULL (0). */
int sessiond_ld_add(const char *cur, size_t curlen, const char *incr, size_t incrlen,
                    int incr_must_be_finite, char *out, size_t outcap, size_t *outlen) {
    long double a = 0, b;
    int l;
    if (cur != NULL && !parse_ld(cur, curlen, &a)) return -1;
    if (!parse_ld(incr, incrlen, &b)) return -2;
    if (incr_must_be_finite && (isnan(b) || isinf(b))) return -5;
    a += b;
    if (isnan(a) || isinf(a)) return -3;
    l = snprintf(out, outcap, "%.17Lf", a);
    if (l < 0 || (size_t)l + 1 > outcap) return -4;
    if (strchr(out, '.') != NULL) {
        char *p = out + l - 1;
        while (*p == '0') { p--; l--; }
        if (*p == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') { out[0] = '0'; l = 1; }
    *outlen = (size_t)l;
    return 1;
}
