/* Text form of messages for the host tests (see spec.h). */
#include "spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Value of "key=" in line, or NULL. */
static const char *field(const char *line, const char *key) {
    size_t n = strlen(key);
    const char *p = line;
    while ((p = strstr(p, key)) != NULL) {
        if ((p == line || p[-1] == ' ') && p[n] == '=') return p + n + 1;
        p += n;
    }
    return NULL;
}

static int number(const char *line, const char *key, long *value) {
    const char *p = field(line, key);
    char *end;
    if (p == NULL) return -1;
    *value = strtol(p, &end, 10);
    return end == p ? -1 : 0;
}

static size_t encode_hello(const char *line, uint8_t *out, long seq) {
    ecg_hello_t h;
    long v[5];
    unsigned fw[3];
    static char leads[ECG_MAX_FRAME];
    const char *p = field(line, "leads"), *g = field(line, "gain"), *f = field(line, "fw");
    size_t n;
    if (number(line, "proto", &v[0]) || number(line, "fs_mhz", &v[1]) ||
        number(line, "bits", &v[2]) || number(line, "baseline", &v[3]) || !p || !g || !f ||
        sscanf(f, "%u.%u.%u", &fw[0], &fw[1], &fw[2]) != 3)
        return 0;
    n = strcspn(p, " \n");
    if (n >= sizeof leads) return 0; /* longer than any frame can carry: not encodable */
    memcpy(leads, p, n);
    leads[n] = 0;
    h.protocol = (uint8_t)v[0];
    h.firmware[0] = (uint8_t)fw[0];
    h.firmware[1] = (uint8_t)fw[1];
    h.firmware[2] = (uint8_t)fw[2];
    h.fs_millihz = (uint32_t)v[1];
    h.adc_bits = (uint8_t)v[2];
    h.baseline = (int32_t)v[3];
    h.gain = strtof(g, NULL);
    h.n_leads = 1;
    for (v[4] = 0; leads[v[4]]; v[4]++) h.n_leads += leads[v[4]] == ',';
    h.leads = leads;
    return ecg_frame_hello(out, (uint16_t)seq, &h);
}

static size_t encode_samples(const char *line, uint8_t *out, long seq) {
    int16_t values[ECG_MAX_FRAME / 2];
    long first, leads;
    size_t count = 0;
    const char *p = field(line, "values");
    char *end;
    if (number(line, "first", &first) || number(line, "leads", &leads) || !p || leads < 1) return 0;
    while (count < sizeof values / sizeof values[0]) {
        values[count++] = (int16_t)strtol(p, &end, 10);
        if (end == p) return 0;
        if (*end != ',') break;
        p = end + 1;
    }
    if (count % (size_t)leads) return 0;
    return ecg_frame_samples(out, (uint16_t)seq, (uint32_t)first, (uint8_t)leads,
                             (uint8_t)(count / (size_t)leads), values);
}

size_t spec_encode(const char *line, uint8_t *out) {
    long seq, index, flags;
    if (number(line, "seq", &seq)) return 0;
    if (strncmp(line, "HELLO ", 6) == 0) return encode_hello(line, out, seq);
    if (strncmp(line, "SAMPLES ", 8) == 0) return encode_samples(line, out, seq);
    if (strncmp(line, "STATUS ", 7) == 0 && !number(line, "index", &index) &&
        !number(line, "flags", &flags))
        return ecg_frame_status(out, (uint16_t)seq, (uint32_t)index, (uint8_t)flags);
    return 0;
}

static int format_hello(const ecg_frame_t *f, char *text, size_t cap) {
    const uint8_t *p = f->payload;
    uint32_t gain_bits = ecg_get_u32(p + 10);
    float gain;
    int names = (int)(f->payload_len - ECG_HELLO_FIXED);
    if (f->payload_len < ECG_HELLO_FIXED) return -1;
    memcpy(&gain, &gain_bits, sizeof gain);
    snprintf(text, cap, "HELLO seq=%u proto=%u fw=%u.%u.%u fs_mhz=%lu bits=%u leads=%.*s gain=%.9g baseline=%ld",
             f->seq, p[0], p[1], p[2], p[3], (unsigned long)ecg_get_u32(p + 4), p[8], names,
             (const char *)p + ECG_HELLO_FIXED, (double)gain, (long)(int32_t)ecg_get_u32(p + 14));
    return 0;
}

static int format_samples(const ecg_frame_t *f, char *text, size_t cap) {
    const uint8_t *p = f->payload;
    size_t total, i, n;
    if (f->payload_len < ECG_SAMPLES_FIXED) return -1;
    total = (size_t)p[4] * p[5];
    if (p[4] == 0 || f->payload_len != ECG_SAMPLES_FIXED + 2 * total) return -1;
    n = (size_t)snprintf(text, cap, "SAMPLES seq=%u first=%lu leads=%u values=", f->seq,
                         (unsigned long)ecg_get_u32(p), p[4]);
    for (i = 0; i < total && n < cap; i++)
        n += (size_t)snprintf(text + n, cap - n, i ? ",%d" : "%d",
                              (int16_t)ecg_get_u16(p + ECG_SAMPLES_FIXED + 2 * i));
    return 0;
}

int spec_format(const ecg_frame_t *f, char *text, size_t cap) {
    if (f->type == ECG_HELLO) return format_hello(f, text, cap);
    if (f->type == ECG_SAMPLES) return format_samples(f, text, cap);
    if (f->payload_len != ECG_STATUS_SIZE) return -1;
    snprintf(text, cap, "STATUS seq=%u index=%lu flags=%u", f->seq,
             (unsigned long)ecg_get_u32(f->payload), f->payload[4]);
    return 0;
}
