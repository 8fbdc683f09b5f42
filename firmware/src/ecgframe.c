/* ecgframe: framing, COBS and CRC of the ecgedge wire protocol (see ecgframe.h). */
#include "ecgframe.h"

#include <string.h>

void ecg_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFF);
    p[1] = (uint8_t)(v >> 8);
}

void ecg_put_u32(uint8_t *p, uint32_t v) {
    ecg_put_u16(p, (uint16_t)(v & 0xFFFF));
    ecg_put_u16(p + 2, (uint16_t)(v >> 16));
}

uint16_t ecg_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | ((uint16_t)p[1] << 8)); }

uint32_t ecg_get_u32(const uint8_t *p) {
    return (uint32_t)ecg_get_u16(p) | ((uint32_t)ecg_get_u16(p + 2) << 16);
}

uint16_t ecg_crc16(const uint8_t *data, size_t len, uint16_t crc) {
    size_t i;
    int bit;
    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)data[i] << 8;
        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

size_t ecg_cobs_encode(const uint8_t *in, size_t len, uint8_t *out) {
    size_t code_at = 0, n = 1, i;
    uint8_t code = 1;
    for (i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = n++;
            code = 1;
        } else {
            out[n++] = in[i];
            if (++code == 0xFF && i + 1 < len) { /* full block; a final one needs no successor */
                out[code_at] = code;
                code_at = n++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    return n;
}

int ecg_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
    size_t i = 0, n = 0;
    while (i < len) {
        uint8_t code = in[i++], j;
        if (code == 0) return -1;
        for (j = 1; j < code; j++) {
            if (i >= len || in[i] == 0 || n >= cap) return -1;
            out[n++] = in[i++];
        }
        if (code < 0xFF && i < len) {
            if (n >= cap) return -1;
            out[n++] = 0;
        }
    }
    return (int)n;
}

/* CRC, COBS and delimit a raw frame whose header and payload are in raw[0..len). */
static size_t finish_frame(uint8_t *raw, size_t len, uint8_t *out) {
    size_t n;
    ecg_put_u16(raw + len, ecg_crc16(raw, len, 0xFFFF));
    n = ecg_cobs_encode(raw, len + ECG_CRC_SIZE, out);
    out[n] = 0;
    return n + 1;
}

static size_t put_header(uint8_t *raw, uint8_t type, uint16_t seq) {
    raw[0] = type;
    ecg_put_u16(raw + 1, seq);
    return ECG_HEADER_SIZE;
}

size_t ecg_frame_hello(uint8_t *out, uint16_t seq, const ecg_hello_t *hello) {
    uint8_t raw[ECG_MAX_FRAME];
    size_t n = put_header(raw, ECG_HELLO, seq), names = strlen(hello->leads);
    uint32_t gain_bits;
    if (n + ECG_HELLO_FIXED + names + ECG_CRC_SIZE > ECG_MAX_FRAME) return 0;
    memcpy(&gain_bits, &hello->gain, sizeof gain_bits); /* IEEE-754 single on AVR, ARM, x86 */
    raw[n++] = hello->protocol;
    raw[n++] = hello->firmware[0];
    raw[n++] = hello->firmware[1];
    raw[n++] = hello->firmware[2];
    ecg_put_u32(raw + n, hello->fs_millihz);
    n += 4;
    raw[n++] = hello->adc_bits;
    raw[n++] = hello->n_leads;
    ecg_put_u32(raw + n, gain_bits);
    n += 4;
    ecg_put_u32(raw + n, (uint32_t)hello->baseline);
    n += 4;
    memcpy(raw + n, hello->leads, names);
    return finish_frame(raw, n + names, out);
}

size_t ecg_frame_samples(uint8_t *out, uint16_t seq, uint32_t first, uint8_t n_leads,
                         uint8_t count, const int16_t *values) {
    uint8_t raw[ECG_MAX_FRAME];
    size_t n = put_header(raw, ECG_SAMPLES, seq), total = (size_t)n_leads * count, i;
    if (n_leads == 0 || count == 0 ||
        n + ECG_SAMPLES_FIXED + 2 * total + ECG_CRC_SIZE > ECG_MAX_FRAME)
        return 0;
    ecg_put_u32(raw + n, first);
    raw[n + 4] = n_leads;
    raw[n + 5] = count;
    n += ECG_SAMPLES_FIXED;
    for (i = 0; i < total; i++, n += 2) ecg_put_u16(raw + n, (uint16_t)values[i]);
    return finish_frame(raw, n, out);
}

size_t ecg_frame_status(uint8_t *out, uint16_t seq, uint32_t index, uint8_t flags) {
    uint8_t raw[ECG_HEADER_SIZE + ECG_STATUS_SIZE + ECG_CRC_SIZE];
    size_t n = put_header(raw, ECG_STATUS, seq);
    ecg_put_u32(raw + n, index);
    raw[n + 4] = flags;
    return finish_frame(raw, n + ECG_STATUS_SIZE, out);
}

void ecg_decoder_init(ecg_decoder_t *dec) {
    dec->len = 0;
    dec->overflow = 0;
}

static int decode_buffer(const ecg_decoder_t *dec, ecg_frame_t *frame) {
    uint8_t raw[ECG_MAX_FRAME];
    int n = ecg_cobs_decode(dec->buf, dec->len, raw, sizeof raw);
    if (n < 0) return ECG_ERR_COBS;
    if (n < ECG_HEADER_SIZE + ECG_CRC_SIZE) return ECG_ERR_LENGTH;
    if (ecg_crc16(raw, (size_t)n - ECG_CRC_SIZE, 0xFFFF) != ecg_get_u16(raw + n - ECG_CRC_SIZE))
        return ECG_ERR_CRC;
    if (raw[0] < ECG_HELLO || raw[0] > ECG_STATUS) return ECG_ERR_TYPE;
    frame->type = raw[0];
    frame->seq = ecg_get_u16(raw + 1);
    frame->payload_len = (size_t)n - ECG_HEADER_SIZE - ECG_CRC_SIZE;
    memcpy(frame->payload, raw + ECG_HEADER_SIZE, frame->payload_len);
    return ECG_FRAME;
}

int ecg_decoder_feed(ecg_decoder_t *dec, uint8_t byte, ecg_frame_t *frame) {
    int result;
    if (byte != 0) {
        if (dec->len < sizeof dec->buf)
            dec->buf[dec->len++] = byte;
        else
            dec->overflow = 1;
        return ECG_NONE;
    }
    if (dec->len == 0 && !dec->overflow) return ECG_NONE; /* back-to-back delimiters */
    result = dec->overflow ? ECG_ERR_LENGTH : decode_buffer(dec, frame);
    ecg_decoder_init(dec);
    return result;
}
