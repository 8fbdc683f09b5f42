/*
 * ecgframe: the ecgedge wire protocol (docs/protocol.md) in portable C99.
 *
 * A frame is COBS(type | seq | payload | crc16) followed by a 0x00 delimiter.
 * Multi-byte fields are little-endian; the CRC is CRC-16-CCITT (poly 0x1021,
 * init 0xFFFF, no reflection), the function Python's binascii.crc_hqx computes.
 * No heap, no stdio: it runs on an 8-bit AVR as well as on the host.
 */
#ifndef ECGFRAME_H
#define ECGFRAME_H

#include <stddef.h>
#include <stdint.h>

#define ECG_PROTOCOL_VERSION 1

#define ECG_HELLO 0x01
#define ECG_SAMPLES 0x02
#define ECG_STATUS 0x03

#define ECG_LEAD_OFF_PLUS 0x01
#define ECG_LEAD_OFF_MINUS 0x02
#define ECG_ADC_OVERRUN 0x04

/* Largest decoded frame (header + payload + CRC). */
#define ECG_MAX_FRAME 256
/* Largest COBS-encoded frame, delimiter excluded. */
#define ECG_MAX_ENCODED (ECG_MAX_FRAME + ECG_MAX_FRAME / 254 + 1)
/* Room a caller needs for one encoded frame with its delimiter. */
#define ECG_FRAME_BUFFER (ECG_MAX_ENCODED + 1)
#define ECG_HEADER_SIZE 3
#define ECG_CRC_SIZE 2
#define ECG_HELLO_FIXED 18
#define ECG_SAMPLES_FIXED 6
#define ECG_STATUS_SIZE 5

typedef struct {
    uint8_t protocol;       /* ECG_PROTOCOL_VERSION */
    uint8_t firmware[3];    /* major, minor, patch */
    uint32_t fs_millihz;    /* sample rate in mHz (360 Hz -> 360000) */
    uint8_t adc_bits;       /* ADC resolution */
    uint8_t n_leads;        /* leads interleaved in SAMPLES */
    float gain;             /* ADC counts per mV */
    int32_t baseline;       /* ADC count of 0 mV */
    const char *leads;      /* comma-separated names, n_leads of them */
} ecg_hello_t;

/* One decoded frame: header fields and the raw payload. */
typedef struct {
    uint8_t type;
    uint16_t seq;
    uint8_t payload[ECG_MAX_FRAME];
    size_t payload_len;
} ecg_frame_t;

/* Decoder state: bytes since the last delimiter. */
typedef struct {
    uint8_t buf[ECG_MAX_ENCODED];
    size_t len;
    uint8_t overflow;
} ecg_decoder_t;

/* Results of ecg_decoder_feed (negative: a frame was dropped). */
enum {
    ECG_NONE = 0,
    ECG_FRAME = 1,
    ECG_ERR_COBS = -1,
    ECG_ERR_CRC = -2,
    ECG_ERR_LENGTH = -3,
    ECG_ERR_TYPE = -4
};

uint16_t ecg_crc16(const uint8_t *data, size_t len, uint16_t crc);

/* COBS-encode len bytes; out needs len + len / 254 + 1 bytes. Returns the encoded length. */
size_t ecg_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);
/* COBS-decode; returns the decoded length, or -1 if malformed or longer than cap. */
int ecg_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* Frame builders: write the encoded frame and its delimiter into out
 * (ECG_FRAME_BUFFER bytes); return the byte count, 0 if the message is too big. */
size_t ecg_frame_hello(uint8_t *out, uint16_t seq, const ecg_hello_t *hello);
size_t ecg_frame_samples(uint8_t *out, uint16_t seq, uint32_t first, uint8_t n_leads,
                         uint8_t count, const int16_t *values);
size_t ecg_frame_status(uint8_t *out, uint16_t seq, uint32_t index, uint8_t flags);

/* Byte-at-a-time decoder with resync on the next delimiter. */
void ecg_decoder_init(ecg_decoder_t *dec);
int ecg_decoder_feed(ecg_decoder_t *dec, uint8_t byte, ecg_frame_t *frame);

/* Little-endian field access, shared by the builders and the payload readers. */
void ecg_put_u16(uint8_t *p, uint16_t v);
void ecg_put_u32(uint8_t *p, uint32_t v);
uint16_t ecg_get_u16(const uint8_t *p);
uint32_t ecg_get_u32(const uint8_t *p);

#endif
