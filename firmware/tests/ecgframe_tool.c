/* ecgframe_tool: the C side of the Python cross tests (tests/test_firmware.py).
 *   ecgframe_tool encode       spec lines on stdin -> frames on stdout
 *   ecgframe_tool decode       frames on stdin -> spec lines (or "BAD <reason>") on stdout
 *   ecgframe_tool board N      the sampling loop over N synthetic samples -> frames on stdout
 * The board's sample i is 1024 + (i * 37) % 401 - 200; electrodes are off for
 * samples [N/4, N/4 + 90); the loop stalls once at N/2 for ECG_RING + 5 samples. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecgframe.h"
#include "sampler.h"
#include "spec.h"

static int encode(void) {
    char line[4096];
    uint8_t frame[ECG_FRAME_BUFFER];
    while (fgets(line, sizeof line, stdin)) {
        size_t n;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == 0) continue;
        n = spec_encode(line, frame);
        if (n == 0) {
            fprintf(stderr, "not a valid spec: %s\n", line);
            return 2;
        }
        fwrite(frame, 1, n, stdout);
    }
    return 0;
}

static int decode(void) {
    static const char *names[] = {"", "cobs", "crc", "length", "type"};
    ecg_decoder_t dec;
    ecg_frame_t frame;
    char text[4096];
    int c;
    ecg_decoder_init(&dec);
    while ((c = getchar()) != EOF) {
        int r = ecg_decoder_feed(&dec, (uint8_t)c, &frame);
        if (r < 0)
            printf("BAD %s\n", names[-r]);
        else if (r == ECG_FRAME)
            printf("%s\n", spec_format(&frame, text, sizeof text) == 0 ? text : "BAD payload");
    }
    return 0;
}

static void write_stdout(const uint8_t *data, size_t len, void *ctx) {
    (void)ctx;
    fwrite(data, 1, len, stdout);
}

static int board(long n) {
    ecg_hello_t hello = {ECG_PROTOCOL_VERSION, {1, 0, 0}, 360000, 11, 1, 200.0f, 1024, "MLII"};
    ecg_sampler_t s;
    long i;
    ecg_sampler_init(&s, &hello, 10, write_stdout, NULL);
    for (i = 0; i < n; i++) {
        uint8_t off = i >= n / 4 && i < n / 4 + 90 ? ECG_LEAD_OFF_PLUS | ECG_LEAD_OFF_MINUS : 0;
        ecg_sampler_isr(&s, (int16_t)(1024 + (i * 37) % 401 - 200), off);
        if (i < n / 2 || i >= n / 2 + ECG_RING + 5) ecg_sampler_poll(&s);
    }
    ecg_sampler_poll(&s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "encode") == 0) return encode();
    if (argc == 2 && strcmp(argv[1], "decode") == 0) return decode();
    if (argc == 3 && strcmp(argv[1], "board") == 0) return board(strtol(argv[2], NULL, 10));
    fprintf(stderr, "usage: %s encode | decode | board N\n", argv[0]);
    return 2;
}
