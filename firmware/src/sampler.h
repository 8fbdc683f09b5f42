/*
 * sampler: the board's sampling loop, hardware-free.
 *
 * A timer interrupt calls ecg_sampler_isr() once per sample with the ADC
 * reading and the lead-off pins; the main loop calls ecg_sampler_poll(), which
 * sends SAMPLES frames of `per_frame` samples, a STATUS frame whenever the
 * lead-off state changes or samples were lost to an overrun, and a HELLO at
 * start and once per second of samples. One lead (the AD8232 has one).
 *
 * The ISR and the loop share a ring of single-byte indices, which an 8-bit
 * AVR reads and writes atomically, so no interrupt masking is needed.
 */
#ifndef ECG_SAMPLER_H
#define ECG_SAMPLER_H

#include "ecgframe.h"

#define ECG_RING 64 /* samples buffered between ISR and loop (power of two, <= 128) */
#define ECG_MAX_PER_FRAME 32

typedef void (*ecg_write_fn)(const uint8_t *data, size_t len, void *ctx);

typedef struct {
    /* shared with the ISR */
    volatile int16_t ring_value[ECG_RING];
    volatile uint8_t ring_flags[ECG_RING];
    volatile uint8_t ring_missed[ECG_RING]; /* samples lost just before this one */
    volatile uint8_t head;                  /* written by the ISR only */
    volatile uint8_t tail;                  /* written by the loop only */
    volatile uint8_t missed;                /* ISR: samples dropped since the last stored */
    /* loop only */
    ecg_hello_t hello;
    uint8_t per_frame;
    uint32_t index; /* board sample index of the next sample the loop takes */
    uint32_t next_hello;
    uint16_t seq;
    uint8_t sent_flags;
    uint8_t pending;
    int16_t values[ECG_MAX_PER_FRAME];
    ecg_write_fn write;
    void *ctx;
} ecg_sampler_t;

/* per_frame: samples per SAMPLES frame (1..ECG_MAX_PER_FRAME). Returns 0, or -1 if invalid. */
int ecg_sampler_init(ecg_sampler_t *s, const ecg_hello_t *hello, uint8_t per_frame,
                     ecg_write_fn write, void *ctx);
/* From the timer interrupt. lead_flags: ECG_LEAD_OFF_PLUS | ECG_LEAD_OFF_MINUS bits. */
void ecg_sampler_isr(ecg_sampler_t *s, int16_t value, uint8_t lead_flags);
/* From the main loop, as often as possible. */
void ecg_sampler_poll(ecg_sampler_t *s);

#endif
