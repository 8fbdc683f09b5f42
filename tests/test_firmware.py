"""The C firmware and the Python decoder agree, byte for byte, on the shared vectors.

The vectors file (``firmware/tests/vectors.txt``) is checked from both sides;
then frames built by the C code are decoded by :class:`FrameDecoder` and frames
built by Python are decoded by the C decoder. The C parts need gcc and make.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fixtures.bridge_support import decode_stream

from ecgedge.firmware_bridge.protocol import (
    ADC_OVERRUN,
    LEAD_OFF_MINUS,
    LEAD_OFF_PLUS,
    FrameError,
    Hello,
    Samples,
    Status,
    decode_frame,
    encode_frame,
)

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
VECTORS = FIRMWARE / "tests" / "vectors.txt"
RING = 64  # ECG_RING in firmware/src/sampler.h


def to_spec(seq: int, message) -> str:
    """The text form of a message (firmware/tests/spec.h)."""
    if isinstance(message, Hello):
        return (
            f"HELLO seq={seq} proto={message.protocol} fw={'.'.join(map(str, message.firmware))} "
            f"fs_mhz={round(message.fs * 1000)} bits={message.adc_bits} leads={','.join(message.leads)} "
            f"gain={float(np.float32(message.gain)):.9g} baseline={message.baseline}"
        )
    if isinstance(message, Samples):
        values = ",".join(str(int(v)) for v in message.values.ravel())
        return f"SAMPLES seq={seq} first={message.first} leads={message.values.shape[1]} values={values}"
    return f"STATUS seq={seq} index={message.index} flags={message.flags}"


def from_spec(line: str) -> tuple[int, object]:
    kind, *pairs = line.split()
    f = dict(pair.split("=", 1) for pair in pairs)
    if kind == "HELLO":
        message = Hello(
            fs=int(f["fs_mhz"]) / 1000,
            adc_bits=int(f["bits"]),
            gain=float(f["gain"]),
            baseline=int(f["baseline"]),
            leads=tuple(f["leads"].split(",")),
            firmware=tuple(int(v) for v in f["fw"].split(".")),
            protocol=int(f["proto"]),
        )
    elif kind == "SAMPLES":
        values = np.array([int(v) for v in f["values"].split(",")]).reshape(-1, int(f["leads"]))
        message = Samples(int(f["first"]), values)
    else:
        message = Status(int(f["index"]), int(f["flags"]))
    return int(f["seq"]), message


def read_vectors() -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    good, bad = [], []
    for line in VECTORS.read_text().splitlines():
        if line.startswith("#") or "|" not in line:
            continue
        text, hexed = (part.strip() for part in line.split("|"))
        (bad if text.startswith("BAD ") else good).append((text.removeprefix("BAD "), bytes.fromhex(hexed)))
    return good, bad


def test_python_matches_vectors():
    good, bad = read_vectors()
    assert len(good) >= 5 and len(bad) >= 3
    for text, frame in good:
        seq, message = from_spec(text)
        assert encode_frame(message, seq) == frame, text
        assert to_spec(*decode_frame(frame[:-1])) == text
    for reason, frame in bad:
        with pytest.raises(FrameError) as info:
            decode_frame(frame.split(b"\x00")[0])
        assert info.value.reason == reason


def random_messages(rng: np.random.Generator, n: int) -> list[tuple[int, object]]:
    messages = []
    for _ in range(n):
        kind = rng.integers(3)
        if kind == 0:
            leads = tuple(f"L{i}" for i in range(rng.integers(1, 4)))
            gain = float(np.float32(rng.uniform(0.1, 1000)))
            message = Hello(
                float(rng.integers(100, 2000)),
                int(rng.integers(8, 17)),
                gain,
                int(rng.integers(-5000, 5000)),
                leads,
                (1, 2, 3),
            )
        elif kind == 1:
            shape = (int(rng.integers(1, 40)), int(rng.integers(1, 3)))
            message = Samples(int(rng.integers(0, 2**32)), rng.integers(-(2**15), 2**15, size=shape))
        else:
            message = Status(int(rng.integers(0, 2**32)), int(rng.integers(0, 8)))
        messages.append((int(rng.integers(0, 2**16)), message))
    return messages


needs_gcc = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None, reason="needs gcc and make to build the C firmware"
)


@pytest.fixture(scope="module")
def c_build(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("firmware-build")
    subprocess.run(
        ["make", "-s", "-C", str(FIRMWARE), f"BUILD={build}", "CC=gcc", "tool", f"{build}/test_ecgframe"], check=True
    )
    return build


@needs_gcc
def test_c_tests_pass(c_build):
    result = subprocess.run([str(c_build / "test_ecgframe"), str(VECTORS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "all ecgframe tests passed" in result.stdout


@needs_gcc
def test_c_encoded_frames_decode_in_python_byte_for_byte(c_build):
    messages = random_messages(np.random.default_rng(0), 300)
    specs = "\n".join(to_spec(seq, m) for seq, m in messages) + "\n"
    c_bytes = subprocess.run(
        [str(c_build / "ecgframe_tool"), "encode"], input=specs.encode(), capture_output=True, check=True
    ).stdout
    assert c_bytes == b"".join(encode_frame(m, seq) for seq, m in messages)
    collector, stats = decode_stream(c_bytes)
    assert stats.dropped == 0 and stats.frames == len(messages)
    assert [to_spec(0, e) for e in collector.events] == [to_spec(0, m) for _, m in messages]


@needs_gcc
def test_python_encoded_frames_decode_in_c(c_build):
    messages = random_messages(np.random.default_rng(1), 300)
    stream = b"".join(encode_frame(m, seq) for seq, m in messages)
    corrupt = bytearray(encode_frame(Status(5, 1), 9))
    corrupt[3] ^= 0x20
    out = subprocess.run(
        [str(c_build / "ecgframe_tool"), "decode"],
        input=stream + bytes(corrupt) + stream[:200],
        capture_output=True,
        check=True,
    )
    lines = out.stdout.decode().splitlines()
    expected = [to_spec(seq, m) for seq, m in messages]
    assert lines[: len(messages)] == expected
    with pytest.raises(FrameError) as info:
        decode_frame(bytes(corrupt[:-1]))
    assert lines[len(messages)] == f"BAD {info.value.reason}"  # both sides drop it for the same reason
    assert lines[len(messages) + 1 :] == expected[: len(lines) - len(messages) - 1]


@needs_gcc
def test_c_sampling_loop_stream_decodes_in_python(c_build):
    n = 2000
    stream = subprocess.run([str(c_build / "ecgframe_tool"), "board", str(n)], capture_output=True, check=True).stdout
    collector, stats = decode_stream(stream, chunk=64)
    assert stats.dropped == 0 and stats.lost == 0
    assert isinstance(collector.events[0], Hello) and collector.events[0].fs == pytest.approx(360.0)
    received = {}
    for event in collector.events:
        if isinstance(event, Samples):
            for i, value in enumerate(event.values[:, 0]):
                received[event.first + i] = int(value)
    statuses = [(e.index, e.flags) for e in collector.events if isinstance(e, Status)]
    off = LEAD_OFF_PLUS | LEAD_OFF_MINUS
    assert statuses[:2] == [(n // 4, off), (n // 4 + 90, 0)]
    # the loop stalls for RING + 5 samples: the ring keeps RING - 1 of them, the rest are lost,
    # and so is the first sample after the stall (its interrupt comes before the loop drains the ring)
    lost = RING + 5 - (RING - 1) + 1
    gap_start = n // 2 + RING - 1
    assert statuses[2] == (gap_start + lost, ADC_OVERRUN)
    assert set(range(gap_start, gap_start + lost)).isdisjoint(received)
    assert all(received[i] == 1024 + (i * 37) % 401 - 200 for i in received)
    last = max(received)  # samples after the last full frame wait in the board for the next one
    assert last >= n - 10
    assert sorted(received) == [i for i in range(last + 1) if not gap_start <= i < gap_start + lost]


@needs_gcc
def test_spec_tool_refuses_a_lead_list_longer_than_a_frame_without_overflowing(tmp_path):
    """A 400-character lead list once overflowed spec.c's global buffer; built with ASan, it is now refused cleanly."""
    sanitize = "-fsanitize=address,undefined -fno-sanitize-recover=all"
    flags = f"CFLAGS=-std=c99 -O1 -g -Wall -Wextra -Werror -pedantic {sanitize}"
    subprocess.run(["make", "-s", "-C", str(FIRMWARE), f"BUILD={tmp_path}", "CC=gcc", flags, "tool"], check=True)
    line = f"HELLO seq=0 proto=1 fw=1.0.0 fs_mhz=360000 bits=11 leads={'V' * 400} gain=200 baseline=1024\n"
    result = subprocess.run([str(tmp_path / "ecgframe_tool"), "encode"], input=line.encode(), capture_output=True)
    assert result.returncode == 2 and b"not a valid spec" in result.stderr, result.stderr.decode()
    assert b"AddressSanitizer" not in result.stderr and result.stdout == b""
