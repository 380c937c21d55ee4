"""The system catalogue (nodes and pods), from ``reference/hardware.md`` with sources.

Latencies: EFA small-message latency is measured (~9.9 us, osu_latency, aws-parallelcluster
#6449). InfiniBand 1-2 us end to end is a planning value (hardware.md section 3). Scale-up hop
latencies are not published for NVSwitch and TPU ICI (1 us each, estimates, flagged). A
NeuronLink hop is 10 us: the Neuron docs' nccom-test guide runs an all-gather on the 32
NeuronCores of one trn1.32xlarge in 149-151 us from 1 KiB to 64 KiB, a ring of 15 chip hops
(derived on Trainium1; Trainium2 and Trainium3 take it as an estimate).

Overhead power (hosts, NICs, switches, fans): derived from the DGX H100 datasheet where it
exists (10.2 kW max minus 8 x 700 W of GPUs = 4.6 kW); elsewhere 0.5 x the chips' TDP, the low
end of the 1.5-2x "host, network and storage" factor in hardware.md section 4 (estimate).
"""

from __future__ import annotations

from ultracluster.errors import ConfigError
from ultracluster.hardware.chip import Chip
from ultracluster.hardware.chips import get_chip
from ultracluster.hardware.sources import Source, der, est, meas, off
from ultracluster.hardware.system import System, Topology
from ultracluster.units import GBPS, TBPS, US

OVERHEAD_FRACTION_OF_CHIP_TDP = 0.5
"""Estimate: hardware.md section 4 multiplies chip power by 1.5-2 for host, network, storage."""

_EFA_LAT = (10 * US, meas("osu_latency over EFA ~9.9 us (aws-parallelcluster issue #6449)"))
_IB_LAT = (2 * US, est("InfiniBand 1-2 us small-message planning value (hardware.md s.3)"))
_ROCE_LAT = (3 * US, est("RoCE small-message latency; assumption here"))
_DCN_LAT = (10 * US, est("TPU data-centre network latency; assumption here"))
_NVS_LAT = (1 * US, est("NVSwitch hop; not published, assumption here"))
_NCCOM = ("Neuron docs nccom-test guide (aws-neuron/aws-neuron-sdk "
          "tools/neuron-sys-tools/nccom-test.rst): 32-rank all-gather on one trn1.32xlarge, "
          "1-64 KiB in 149-151 us = 15 chip hops of 10 us; the guide's figures are not kept "
          "up to date")
_NL_LAT = (10 * US, der(_NCCOM))
_NL_LAT_LATER = (10 * US, est("Trainium1's NeuronLink hop taken (the same Neuron collectives); "
                              + _NCCOM))
_ICI_LAT = (1 * US, est("TPU ICI hop; not published, assumption here"))


def _system(
    name: str,
    display: str,
    chip: str,
    *,
    chips: int,
    nodes: int,
    topology: Topology,
    nic: tuple[float, Source],
    out_lat: tuple[float, Source],
    up_lat: tuple[float, Source],
    dims: tuple[int, ...] = (),
    price: tuple[float | None, Source] = (None, est("price not known")),
    overhead: tuple[float, Source] | None = None,
    up_bw: tuple[float, Source] | None = None,
    topo_src: Source | None = None,
) -> System:
    c: Chip = get_chip(chip)
    if overhead is None:
        overhead = (
            OVERHEAD_FRACTION_OF_CHIP_TDP * chips * c.tdp_w,
            est(f"{OVERHEAD_FRACTION_OF_CHIP_TDP} x chips' TDP (hardware.md s.4 factor)"),
        )
    if up_bw is None:
        up_bw = (c.scale_up_bytes_per_s, c.sources["scale_up_bytes_per_s"])
    return System(
        name=name, display_name=display, chip=c, num_chips=chips, num_nodes=nodes,
        topology=topology, torus_dims=dims, scale_up_bytes_per_s=up_bw[0],
        scale_up_latency_s=up_lat[0], nic_bytes_per_s=nic[0], scale_out_latency_s=out_lat[0],
        price_per_hour_usd=price[0], overhead_power_w=overhead[0],
        sources={
            "topology": topo_src or off("reference/hardware.md section 2"),
            "scale_up_bytes_per_s": up_bw[1], "scale_up_latency_s": up_lat[1],
            "nic_bytes_per_s": nic[1], "scale_out_latency_s": out_lat[1],
            "price_per_hour_usd": price[1], "overhead_power_w": overhead[1],
        },
    )


def _catalogue() -> dict[str, System]:
    neuron_trn2 = "AWS Neuron docs 'Amazon EC2 Trn2 Architecture'"
    dgx = (4600.0, der("DGX H100 ~10.2 kW max minus 8 x 700 W GPUs (NVIDIA datasheet, restated)"))
    tpu_dcn = "DCN ~50 Gb/s per chip (Google Cloud docs 'TPU v5p'); applied to every TPU pod"
    systems = [
        _system("trn1.32xlarge", "trn1.32xlarge (16 Trainium1)", "trn1", chips=16, nodes=1,
                topology="torus", dims=(4, 4), up_lat=_NL_LAT,
                topo_src=off("Neuron docs: NeuronLink-v2 '4D-HyperCube' (v2.9); modelled as 4x4"),
                nic=(800 * GBPS, off("Neuron docs trn1-arch: 8 EFA devices, 800 Gbps")),
                out_lat=_EFA_LAT,
                price=(21.50, off("on-demand us-east-1, usage.ai 'AWS Trainium vs GPU' (2026)"))),
        _system("trn2.48xlarge", "trn2.48xlarge (16 Trainium2)", "trn2", chips=16, nodes=1,
                topology="torus", dims=(4, 4), up_lat=_NL_LAT_LATER,
                up_bw=(1.024e12, off(neuron_trn2 + ": 1,024 GB/s intra-instance NeuronLink")),
                topo_src=off(neuron_trn2 + ": 4x4 2D torus"),
                nic=(3.2 * TBPS, off(neuron_trn2 + ": 3.2 Tbps EFAv3")), out_lat=_EFA_LAT,
                price=(35.7608, est("UNVERIFIED: constant in two public code files; confirm on "
                                    "aws.amazon.com/ec2/pricing"))),
        _system("trn2-ultraserver", "Trn2 UltraServer (64 Trainium2)", "trn2", chips=64, nodes=4,
                topology="torus", dims=(4, 4, 4), up_lat=_NL_LAT_LATER,
                topo_src=est("SemiAnalysis: 2D torus per instance + rings across 4 = 4x4x4"),
                nic=(12.8 * TBPS, off("4 x 3.2 Tbps EFAv3 (glennklockwood.com, Neuron docs)")),
                out_lat=_EFA_LAT,
                price=(4 * 35.7608, der("4 x trn2.48xlarge (itself unverified)"))),
        _system("trn3-ultraserver", "Trn3 Gen2 UltraServer (144 Trainium3)", "trn3", chips=144,
                nodes=36, topology="all-to-all", up_lat=_NL_LAT_LATER,
                up_bw=(2048 * 1024**3, off("Neuron docs trn3-arch: 2,048 GiB/s per device "
                                            "(chip page says 2.56 TB/s)")),
                topo_src=off("Neuron docs trn3-arch: NeuronSwitch-v1 two levels, all-to-all"),
                nic=(28.8 * TBPS, off("Neuron docs trn3-arch: 28.8 Tbps EFA")), out_lat=_EFA_LAT,
                price=(144 * 2 * 35.7608 / 16, est("not announced; assumption here: 2x the "
                                                   "Trn2 per-chip hourly price"))),
        _system("p5.48xlarge", "AWS p5.48xlarge (8 H100)", "h100-sxm", chips=8, nodes=1,
                topology="switch", up_lat=_NVS_LAT, overhead=dgx,
                nic=(3.2 * TBPS, off("AWS Capacity Blocks pricing table: 3,200 Gbps EFA")),
                out_lat=_EFA_LAT,
                price=(54.08, der("$98.32 at launch (nextplatform.com) less the June 2025 cut of "
                                  "up to 45% (usage.ai)"))),
        _system("dgx-a100", "NVIDIA DGX A100 80GB (Selene)", "a100-80gb", chips=8, nodes=1,
                topology="switch", up_lat=_NVS_LAT,
                nic=(8 * 200 * GBPS, off("8x 200 Gb/s HDR InfiniBand (ConnectX-6)")),
                out_lat=_IB_LAT),
        _system("dgx-h100", "NVIDIA DGX H100", "h100-sxm", chips=8, nodes=1, topology="switch",
                up_lat=_NVS_LAT, overhead=dgx,
                nic=(8 * 400 * GBPS, off("8x 400 Gb/s NDR ConnectX-7 (NVIDIA datasheet, restated)")),
                out_lat=_IB_LAT),
        _system("grand-teton-h100", "Meta Grand Teton (8 H100)", "h100-sxm", chips=8, nodes=1,
                topology="switch", up_lat=_NVS_LAT, overhead=dgx,
                nic=(8 * 400 * GBPS, off("Meta Engineering (2024): 400 Gb/s per GPU RoCE/IB")),
                out_lat=_ROCE_LAT),
        _system("h800-node", "H800 node (8 H800)", "h800", chips=8, nodes=1, topology="switch",
                up_lat=_NVS_LAT, overhead=dgx,
                nic=(8 * 400 * GBPS, off("DeepSeek-V3 report: 8x 400 Gb/s IB per node")),
                out_lat=_IB_LAT),
        _system("hgx-h200", "HGX H200 (8 H200)", "h200", chips=8, nodes=1, topology="switch",
                up_lat=_NVS_LAT, overhead=dgx,
                nic=(8 * 400 * GBPS, off("MLCommons H200 system file: 400G InfiniBand NICs")),
                out_lat=_IB_LAT),
        _system("dgx-b200", "NVIDIA DGX B200", "b200", chips=8, nodes=1, topology="switch",
                up_lat=_NVS_LAT,
                nic=(8 * 400 * GBPS, off("8x 400 Gb/s ConnectX-7 (NVIDIA datasheet, not re-read)")),
                out_lat=_IB_LAT),
        _system("gb200-nvl72", "NVIDIA GB200 NVL72", "gb200", chips=72, nodes=18,
                topology="switch", up_lat=_NVS_LAT,
                overhead=(120e3 - 72 * 1200.0, der("~120 kW per rack (estimate) minus 72 x 1.2 kW")),
                nic=(72 * 400 * GBPS, est("400G ConnectX-7 per GPU, typical (U in hardware.md)")),
                out_lat=_IB_LAT),
        _system("mosaic-a100", "MosaicML A100 80GB node", "a100-80gb", chips=8, nodes=1,
                topology="switch", up_lat=_NVS_LAT,
                nic=(1600 * GBPS, off("MosaicML table heading: 1600 Gb/s RoCE node-to-node")),
                out_lat=_ROCE_LAT),
        _system("jean-zay-a100", "Jean Zay A100 80GB node", "a100-80gb", chips=8, nodes=1,
                topology="switch", up_lat=_NVS_LAT,
                nic=(4 * 100 * GBPS, off("4 Omni-Path links (4x 100 Gb/s) per node")),
                out_lat=_IB_LAT),
        _system("a100-40gb-node", "GPT-NeoX A100 40GB node", "a100-40gb", chips=8, nodes=1,
                topology="switch", up_lat=_NVS_LAT,
                nic=(4 * 200 * GBPS, off("GPT-NeoX-20B paper: 4 ConnectX-6 HDR HCAs per node")),
                out_lat=_IB_LAT),
        _system("mi300x-node", "AMD MI300X platform (8 GPUs)", "mi300x", chips=8, nodes=1,
                topology="all-to-all", up_lat=_NVS_LAT,
                nic=(8 * 400 * GBPS, est("8x 400G NICs, typical; assumption here")),
                out_lat=_ROCE_LAT),
        _system("mi355x-node", "AMD MI355X platform (8 GPUs)", "mi355x", chips=8, nodes=1,
                topology="all-to-all", up_lat=_NVS_LAT,
                nic=(8 * 400 * GBPS, est("8x 400G NICs, typical; assumption here")),
                out_lat=_ROCE_LAT),
        _system("tpu-v4-pod", "TPU v4 pod (4,096 chips)", "tpu-v4", chips=4096, nodes=1024,
                topology="torus", dims=(16, 16, 16), up_lat=_ICI_LAT,
                topo_src=off("Google Cloud docs 'TPU v4': 3D torus"),
                nic=(4096 * 50 * GBPS, est(tpu_dcn)), out_lat=_DCN_LAT),
        _system("tpu-v5p-pod", "TPU v5p pod (8,960 chips)", "tpu-v5p", chips=8960, nodes=2240,
                topology="torus", dims=(16, 20, 28), up_lat=_ICI_LAT,
                topo_src=off("Google Cloud docs 'TPU v5p': 3D torus, 8,960 chips"),
                nic=(8960 * 50 * GBPS, est(tpu_dcn)), out_lat=_DCN_LAT),
        _system("tpu-v5e-pod", "TPU v5e pod (256 chips)", "tpu-v5e", chips=256, nodes=64,
                topology="torus", dims=(16, 16), up_lat=_ICI_LAT,
                topo_src=off("Google Cloud docs 'TPU v5e': 2D torus, 256 chips"),
                nic=(256 * 50 * GBPS, est(tpu_dcn)), out_lat=_DCN_LAT),
        _system("tpu-v6e-pod", "TPU v6e pod (256 chips)", "tpu-v6e", chips=256, nodes=64,
                topology="torus", dims=(16, 16), up_lat=_ICI_LAT,
                topo_src=off("Google Cloud docs 'TPU v6e': 2D torus, 256 chips"),
                nic=(256 * 50 * GBPS, est(tpu_dcn)), out_lat=_DCN_LAT),
        _system("tpu-ironwood-pod", "TPU7x Ironwood pod (9,216 chips)", "tpu-ironwood",
                chips=9216, nodes=2304, topology="torus", dims=(16, 24, 24), up_lat=_ICI_LAT,
                topo_src=off("Google Cloud docs 'TPU7x': 9,216-chip 3D torus superpod"),
                nic=(9216 * 50 * GBPS, est(tpu_dcn)), out_lat=_DCN_LAT),
        _system("local-host", "This machine (one process per chip)", "cpu-local", chips=1,
                nodes=1, topology="switch",
                up_lat=(20 * US, est("loopback; placeholder until `ultracluster calibrate`")),
                nic=(5e9, est("loopback; placeholder until `ultracluster calibrate`")),
                out_lat=(50 * US, est("gloo over loopback; placeholder until calibrated")),
                overhead=(0.0, est("counted in the CPU package power"))),
    ]
    return {s.name: s for s in systems}


SYSTEMS: dict[str, System] = _catalogue()


def get_system(name: str) -> System:
    """The catalogue system `name`, or a `ConfigError` listing the known keys."""
    try:
        return SYSTEMS[name]
    except KeyError:
        raise ConfigError(
            f"system: unknown key {name!r} (known: {', '.join(sorted(SYSTEMS))})"
        ) from None
