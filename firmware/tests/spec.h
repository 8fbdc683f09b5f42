/*
 * The one-line text form of a message used by the shared test vectors
 * (firmware/tests/vectors.txt) and by ecgframe_tool, e.g.
 *   HELLO seq=0 proto=1 fw=1.0.0 fs_mhz=360000 bits=11 leads=MLII gain=200 baseline=1024
 *   SAMPLES seq=1 first=0 leads=1 values=1024,1030,-5
 *   STATUS seq=2 index=100 flags=3
 * Host-side test support only; the firmware does not need it.
 */
#ifndef ECG_SPEC_H
#define ECG_SPEC_H

#include <stddef.h>

#include "ecgframe.h"

/* Encode the message a spec line describes into out (ECG_FRAME_BUFFER bytes).
 * Returns the frame length with its delimiter, or 0 if the line is not a valid spec. */
size_t spec_encode(const char *line, uint8_t *out);
/* Write the canonical spec line of a decoded frame into text. Returns 0, or -1 if the
 * payload does not parse. */
int spec_format(const ecg_frame_t *frame, char *text, size_t cap);

#endif
