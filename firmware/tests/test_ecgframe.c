/* Host tests of ecgframe and sampler: CRC, COBS, the shared vectors, resync, the sampling loop.
 * Usage: test_ecgframe VECTORS_FILE */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ecgframe.h"
#include "sampler.h"
#include "spec.h"

static void test_crc(void) {
    /* the CRC-16/CCITT-FALSE check value */
    CHECK(ecg_crc16((const uint8_t *)"123456789", 9, 0xFFFF) == 0x29B1);
}

static void test_cobs_round_trip(void) {
    uint8_t in[700], enc[720], out[700];
    size_t len, i;
    srand(1);
    for (len = 0; len < sizeof in; len++) {
        size_t n;
        int m;
        for (i = 0; i < len; i++) in[i] = (uint8_t)(len % 3 ? rand() % 256 : 1 + rand() % 255);
        n = ecg_cobs_encode(in, len, enc);
        CHECK(n <= len + len / 254 + 1);
        CHECK(memchr(enc, 0, n) == NULL);
        m = ecg_cobs_decode(enc, n, out, sizeof out);
        CHECK(m == (int)len && memcmp(in, out, len) == 0);
    }
    memset(in, 7, 255);
    CHECK(ecg_cobs_encode(in, 254, enc) == 255); /* one full block, no trailing code byte */
    CHECK(ecg_cobs_encode(in, 255, enc) == 257);
    CHECK(ecg_cobs_decode(enc, 3, out, sizeof out) == -1); /* block runs past the end */
}

static int hex_bytes(const char *hex, uint8_t *out, size_t cap) {
    size_t n = 0;
    unsigned byte;
    while (sscanf(hex, "%2x", &byte) == 1 && n < cap) {
        out[n++] = (uint8_t)byte;
        hex += 2;
    }
    return (int)n;
}

static const char *error_name(int code) {
    switch (code) {
    case ECG_ERR_COBS: return "cobs";
    case ECG_ERR_CRC: return "crc";
    case ECG_ERR_LENGTH: return "length";
    case ECG_ERR_TYPE: return "type";
    default: return "none";
    }
}

/* Feed bytes; return the last non-NONE result, with the frame it produced. */
static int feed(ecg_decoder_t *dec, const uint8_t *bytes, size_t n, ecg_frame_t *frame) {
    size_t i;
    int result = ECG_NONE, r;
    for (i = 0; i < n; i++)
        if ((r = ecg_decoder_feed(dec, bytes[i], frame)) != ECG_NONE) result = r;
    return result;
}

static void test_vectors(const char *path) {
    FILE *f = fopen(path, "r");
    char line[2048], text[2048];
    uint8_t expected[ECG_FRAME_BUFFER], built[ECG_FRAME_BUFFER];
    int good = 0, bad = 0;
    CHECK(f != NULL);
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *bar = strchr(line, '|'), *end;
        ecg_decoder_t dec;
        ecg_frame_t frame;
        int n, result;
        if (line[0] == '#' || bar == NULL) continue;
        n = hex_bytes(bar + 1 + strspn(bar + 1, " "), expected, sizeof expected);
        for (end = bar; end > line && end[-1] == ' '; end--) {}
        *end = 0;
        ecg_decoder_init(&dec);
        result = feed(&dec, expected, (size_t)n, &frame);
        if (strncmp(line, "BAD ", 4) == 0) {
            bad++;
            if (strcmp(error_name(result), line + 4) != 0)
                fprintf(stderr, "vector '%s': decoder said %s\n", line, error_name(result));
            CHECK(strcmp(error_name(result), line + 4) == 0);
            continue;
        }
        good++;
        CHECK(spec_encode(line, built) == (size_t)n && memcmp(built, expected, (size_t)n) == 0);
        CHECK(result == ECG_FRAME && spec_format(&frame, text, sizeof text) == 0);
        if (strcmp(text, line) != 0) fprintf(stderr, "decoded '%s'\n expected '%s'\n", text, line);
        CHECK(strcmp(text, line) == 0);
    }
    fclose(f);
    CHECK(good >= 5 && bad >= 3);
}

static void test_resync(void) {
    uint8_t frame_bytes[ECG_FRAME_BUFFER], junk[400];
    ecg_decoder_t dec;
    ecg_frame_t frame;
    size_t n = ecg_frame_status(frame_bytes, 9, 1234, 1);
    memset(junk, 0x55, sizeof junk);
    ecg_decoder_init(&dec);
    CHECK(feed(&dec, junk, 20, &frame) == ECG_NONE);         /* mid-frame start: no delimiter yet */
    CHECK(feed(&dec, frame_bytes, n, &frame) == ECG_ERR_COBS); /* junk + frame = one bad packet */
    CHECK(feed(&dec, frame_bytes, n, &frame) == ECG_FRAME && frame.seq == 9);
    CHECK(feed(&dec, junk, sizeof junk, &frame) == ECG_NONE);
    CHECK(ecg_decoder_feed(&dec, 0, &frame) == ECG_ERR_LENGTH); /* overlong run dropped */
    CHECK(feed(&dec, frame_bytes, n, &frame) == ECG_FRAME && ecg_get_u32(frame.payload) == 1234);
}

typedef struct {
    ecg_decoder_t dec;
    int hellos, statuses, samples, errors;
    uint32_t next_index;
    uint8_t last_flags;
    uint32_t last_status_index;
} collector_t;

static void collect(const uint8_t *data, size_t len, void *ctx) {
    collector_t *c = ctx;
    ecg_frame_t frame;
    int r = feed(&c->dec, data, len, &frame);
    if (r < 0) c->errors++;
    if (r != ECG_FRAME) return;
    if (frame.type == ECG_HELLO) c->hellos++;
    if (frame.type == ECG_STATUS) {
        c->statuses++;
        c->last_flags = frame.payload[4];
        c->last_status_index = ecg_get_u32(frame.payload);
        c->next_index = c->last_status_index;
    }
    if (frame.type == ECG_SAMPLES) {
        CHECK(ecg_get_u32(frame.payload) == c->next_index); /* contiguous indices */
        c->next_index += frame.payload[5];
        c->samples += frame.payload[5];
    }
}

static void test_sampler(void) {
    ecg_hello_t hello = {ECG_PROTOCOL_VERSION, {1, 0, 0}, 360000, 10, 1, 200.0f, 512, "I"};
    ecg_sampler_t s;
    collector_t c;
    int i;
    memset(&c, 0, sizeof c);
    ecg_decoder_init(&c.dec);
    CHECK(ecg_sampler_init(&s, &hello, 0, collect, &c) == -1);
    CHECK(ecg_sampler_init(&s, &hello, 10, collect, &c) == 0);
    for (i = 0; i < 1000; i++) {
        ecg_sampler_isr(&s, (int16_t)(512 + i % 100), i >= 400 && i < 450 ? ECG_LEAD_OFF_PLUS : 0);
        if (i % 7 == 0) ecg_sampler_poll(&s);
    }
    ecg_sampler_poll(&s);
    CHECK(c.errors == 0 && c.hellos == 3 && c.statuses == 2 && c.last_flags == 0);
    CHECK(c.last_status_index == 450);
    CHECK(c.samples == 1000); /* 1000 is a whole number of frames, lead-off edges included */
    for (i = 0; i < ECG_RING + 10; i++) ecg_sampler_isr(&s, 1, 0); /* the loop stalls */
    ecg_sampler_poll(&s);
    ecg_sampler_isr(&s, 2, 0);
    ecg_sampler_poll(&s);
    CHECK(c.last_flags == ECG_ADC_OVERRUN && c.last_status_index == 1000 + ECG_RING + 10);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTORS_FILE\n", argv[0]);
        return 2;
    }
    test_crc();
    test_cobs_round_trip();
    test_vectors(argv[1]);
    test_resync();
    test_sampler();
    if (check_failures) {
        fprintf(stderr, "%d check(s) failed\n", check_failures);
        return 1;
    }
    printf("all ecgframe tests passed\n");
    return 0;
}
