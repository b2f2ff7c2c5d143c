"""Machine facts read without torch: native bfloat16 from /proc/cpuinfo's CPU flags."""

from __future__ import annotations

import pytest

from launcher import machine

ZEN4 = "flags\t\t: fpu vme avx2 avx512f avx512bw avx512_bf16 clzero xsaveerptr\n"
SKYLAKE = "flags\t\t: fpu vme avx2 avx512f avx512bw avx512vl\n"
SAPPHIRE_RAPIDS_NO_AVX512_BF16 = "flags\t\t: avx512f avx512_fp16 amx_tile amx_int8 amx_bf16\n"
FP16_ONLY = "flags\t\t: avx512f avx512_fp16 amx_fp16\n"  # float16, not bfloat16
AARCH64 = "processor\t: 0\nFeatures\t: fp asimd evtstrm bf16 i8mm\nCPU implementer\t: 0x41\n"


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        ("processor\t: 0\nmodel name\t: AMD EPYC 9454\n" + ZEN4, True),
        (SKYLAKE, False),
        (SAPPHIRE_RAPIDS_NO_AVX512_BF16, True),
        (FP16_ONLY, False),
        # Several CPUs: any one with the flag counts.
        (SKYLAKE + "\n" + ZEN4, True),
        (SKYLAKE + "\n" + SKYLAKE, False),
        # No x86 flags line: not known, so the window says nothing about bfloat16 speed.
        (AARCH64, None),
        ("", None),
    ],
)
def test_native_bf16_from_cpuinfo_flags(cpuinfo, expected):
    assert machine.parse_native_bf16(cpuinfo) is expected


def test_native_bf16_is_unknown_without_cpuinfo(tmp_path):
    assert machine.detect_native_bf16(tmp_path / "no-cpuinfo") is None
    path = tmp_path / "cpuinfo"
    path.write_text(SKYLAKE)
    assert machine.detect_native_bf16(path) is False
