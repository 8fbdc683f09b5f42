/* sampler: ring buffer between the sampling ISR and the framing loop (see sampler.h). */
#include "sampler.h"

#define RING_MASK (ECG_RING - 1)

int ecg_sampler_init(ecg_sampler_t *s, const ecg_hello_t *hello, uint8_t per_frame,
                     ecg_write_fn write, void *ctx) {
    if (per_frame == 0 || per_frame > ECG_MAX_PER_FRAME || hello->n_leads != 1) return -1;
    s->head = s->tail = s->missed = 0;
    s->hello = *hello;
    s->per_frame = per_frame;
    s->index = s->next_hello = 0;
    s->seq = 0;
    s->sent_flags = 0;
    s->pending = 0;
    s->write = write;
    s->ctx = ctx;
    return 0;
}

void ecg_sampler_isr(ecg_sampler_t *s, int16_t value, uint8_t lead_flags) {
    uint8_t head = s->head, next = (uint8_t)((head + 1) & RING_MASK);
    if (next == s->tail) { /* loop too slow: drop, and say so with the next stored sample */
        if (s->missed < 0xFF) s->missed++;
        return;
    }
    s->ring_value[head] = value;
    s->ring_flags[head] = lead_flags;
    s->ring_missed[head] = s->missed;
    s->missed = 0;
    s->head = next;
}

static void send_samples(ecg_sampler_t *s) {
    uint8_t frame[ECG_FRAME_BUFFER];
    size_t n;
    if (s->pending == 0) return;
    n = ecg_frame_samples(frame, s->seq++, s->index - s->pending, 1, s->pending, s->values);
    s->write(frame, n, s->ctx);
    s->pending = 0;
}

static void send_status(ecg_sampler_t *s, uint8_t flags) {
    uint8_t frame[ECG_FRAME_BUFFER];
    s->write(frame, ecg_frame_status(frame, s->seq++, s->index, flags), s->ctx);
}

static void send_hello(ecg_sampler_t *s) {
    uint8_t frame[ECG_FRAME_BUFFER];
    s->write(frame, ecg_frame_hello(frame, s->seq++, &s->hello), s->ctx);
    s->next_hello = s->index + s->hello.fs_millihz / 1000;
}

void ecg_sampler_poll(ecg_sampler_t *s) {
    while (s->tail != s->head) {
        uint8_t tail = s->tail, flags = s->ring_flags[tail], missed = s->ring_missed[tail];
        if (missed || flags != s->sent_flags) {
            send_samples(s);
            s->index += missed;
            send_status(s, (uint8_t)(flags | (missed ? ECG_ADC_OVERRUN : 0)));
            s->sent_flags = flags;
        }
        if (s->pending == 0 && (int32_t)(s->index - s->next_hello) >= 0) send_hello(s);
        s->values[s->pending++] = s->ring_value[tail];
        s->index++;
        s->tail = (uint8_t)((tail + 1) & RING_MASK);
        if (s->pending == s->per_frame) send_samples(s);
    }
}
