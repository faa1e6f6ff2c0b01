"""One party of a SecretFlow PSI run, as a SecretFlow user runs it: ``spu.psi.psi_execute``
over a brpc link between two processes on loopback. The baseline of bench/psi.py.

Runs under the interpreter of the separate environment ``make .venv-spu`` builds (spu 0.9.5
pins NumPy < 2, jax ≤ 0.4.34 and Python < 3.12, which the project's own environment does not
share), so it imports nothing of the project. It prints one JSON object: the seconds
``psi_execute`` took on this side, the intersection count it reports and this process's peak
resident memory.

    python bench/secretflow_psi.py --rank 0 --protocol ECDH --curve FOURQ \\
        --ports 61001,61002 --input a.csv --key phone --output out.csv
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import spu.libspu as libspu
import spu.psi as psi

PROTOCOLS = {"ECDH": psi.PsiProtocol.PROTOCOL_ECDH, "RR22": psi.PsiProtocol.PROTOCOL_RR22,
             "KKRT": psi.PsiProtocol.PROTOCOL_KKRT}  # fmt: skip
CURVES = {"FOURQ": psi.EllipticCurveType.CURVE_FOURQ, "25519": psi.EllipticCurveType.CURVE_25519}


def link(rank: int, ports: list[int]) -> libspu.link.Context:
    desc = libspu.link.Desc()
    desc.id = "tds-bench"
    for i, port in enumerate(ports):
        desc.add_party(f"party{i}", f"127.0.0.1:{port}")
    # SecretFlow's defaults time out a large run between its phases; a user raises them so
    desc.recv_timeout_ms = 3_600_000
    desc.http_timeout_ms = 3_600_000
    desc.connect_retry_times = 120
    desc.connect_retry_interval_ms = 500
    return libspu.link.create_brpc(desc, rank)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), required=True)
    parser.add_argument("--curve", choices=sorted(CURVES), default="FOURQ")
    parser.add_argument("--ports", required=True, help="two loopback ports, rank 0's first")
    parser.add_argument("--input", required=True)
    parser.add_argument("--key", default="phone")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    lctx = link(args.rank, [int(p) for p in args.ports.split(",")])
    protocol = psi.PsiProtocolConfig(
        protocol=PROTOCOLS[args.protocol],
        receiver_rank=0,
        broadcast_result=False,
        ecdh_params=psi.EcdhParams(curve=CURVES[args.curve]),
    )
    config = psi.PsiExecuteConfig(
        protocol_conf=protocol,
        input_params=psi.InputParams(path=args.input, selected_keys=[args.key], keys_unique=True),
        output_params=psi.OutputParams(path=args.output, disable_alignment=True),
    )
    started = time.perf_counter()
    report = psi.psi_execute(config, lctx)
    elapsed = time.perf_counter() - started
    lctx.stop_link()
    print(json.dumps({
        "s": elapsed,
        "intersection": report.intersection_count,
        "original": report.original_count,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
