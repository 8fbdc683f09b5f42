// ecg_ad8232: an AD8232 single-lead ECG front end on an Arduino Uno / Nano (ATmega328P, 16 MHz)
// speaking the ecgedge wire protocol (docs/protocol.md) at 115200 baud.
//
// Wiring (SparkFun AD8232 breakout): OUTPUT -> A0, LO+ -> D10, LO- -> D11, 3.3V, GND.
// Build: run `make sketch` in firmware/ once (it copies src/*.c, src/*.h next to this file),
// then open this folder in the Arduino IDE or run
//   arduino-cli compile --fqbn arduino:avr:uno firmware/arduino/ecg_ad8232
//
// Timer1 in CTC mode interrupts at 16 MHz / 8 / 5555 = 360.036 Hz; the interrupt reads the ADC
// and the lead-off pins into the sampler's ring, and loop() frames and sends what is there.
extern "C" {
#include "ecgframe.h"
#include "sampler.h"
}

static const uint8_t ECG_PIN = A0;
static const uint8_t LO_PLUS_PIN = 10;
static const uint8_t LO_MINUS_PIN = 11;
static const uint16_t TIMER_TOP = 5554;                       // OCR1A: period of TIMER_TOP + 1 ticks
static const uint32_t FS_MILLIHZ = 2000000000UL / (TIMER_TOP + 1);  // 2 MHz timer clock, in mHz

// The AD8232 output sits at mid-supply; with the breakout's gain of 1100 V/V and a 10-bit ADC on
// 5 V, 1 mV at the electrodes is 1100 mV at A0, i.e. 1100 / (5000 / 1024) = 225 counts.
static const ecg_hello_t HELLO_INFO = {ECG_PROTOCOL_VERSION, {1, 0, 0}, FS_MILLIHZ, 10, 1, 225.0f, 512, "I"};

static ecg_sampler_t sampler;

static void write_serial(const uint8_t *data, size_t len, void *) { Serial.write(data, len); }

ISR(TIMER1_COMPA_vect) {
  uint8_t flags = (digitalRead(LO_PLUS_PIN) ? ECG_LEAD_OFF_PLUS : 0) |
                  (digitalRead(LO_MINUS_PIN) ? ECG_LEAD_OFF_MINUS : 0);
  ecg_sampler_isr(&sampler, (int16_t)analogRead(ECG_PIN), flags);
}

void setup() {
  Serial.begin(115200);
  pinMode(LO_PLUS_PIN, INPUT);
  pinMode(LO_MINUS_PIN, INPUT);
  ecg_sampler_init(&sampler, &HELLO_INFO, 10, write_serial, nullptr);
  noInterrupts();
  TCCR1A = 0;
  TCCR1B = _BV(WGM12) | _BV(CS11);  // CTC on OCR1A, prescaler 8
  TCNT1 = 0;
  OCR1A = TIMER_TOP;
  TIMSK1 = _BV(OCIE1A);
  interrupts();
}

void loop() { ecg_sampler_poll(&sampler); }
