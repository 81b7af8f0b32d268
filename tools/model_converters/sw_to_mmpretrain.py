"""Convert an official ShiftwiseConv (SW) ImageNet-1k classification
checkpoint to an mmpretrain checkpoint that ``configs/sw_t_in1k.py`` loads.

The official files (lidc54/shift-wiseConv, a SLaK / ConvNeXt ``main.py``)
hold the ``ShiftWise_v1`` / ``ShiftWise_v2`` weights under ``model`` (and
``model_ema``) next to the pickled training ``args``. Example::

    python tools/model_converters/sw_to_mmpretrain.py \\
        SW_tiny_checkpoint.pth checkpoints/sw_t_in1k.pth
    python tools/test.py configs/sw_t_in1k.py checkpoints/sw_t_in1k.pth

The official SW layers do not save their random indices; the converter
redraws them from the official seed (``--ghost-ratio`` and ``--num-reps``
must match the trained model: 0.23 and 4 for the published SW-T). Key
renames: :mod:`slak_mm.converters.shiftwise`.
"""
from typing import List, Optional

from converter_cli import build_parser, run

from slak_mm.converters import convert_sw_state_dict
from slak_mm.converters.shiftwise import SW_VERSIONS


def format_sw_summary(summary: dict) -> str:
    """A human-readable report of :func:`convert_sw_state_dict`'s
    summary."""
    lines = [
        f'official ShiftWise_{summary["version"]} classification weights '
        f'(from `{summary["source_key"]}`)',
        f'tensors converted: {summary["num_tensors"]} (backbone '
        f'{summary["num_backbone"]} incl. the redrawn SW index buffers, '
        f'head {summary["num_head"]})'
    ]
    for i, stage in enumerate(summary['stages']):
        k, nk = stage['small_kernel_size'], stage['num_pieces']
        lines.append(
            f'stage {i}: depth {stage["depth"]}, {stage["channels"]} '
            f'channels ({stage["rep_channels"]} rep), k={k}, {nk} pieces '
            f'(kernel_size K: odd, {nk * k - k + 1} <= K <= {nk * k}), '
            f'{stage["num_paths"]} path(s)')
    cfg = summary['backbone_cfg']
    lines.append(f'backbone: type={cfg["type"]}, arch={cfg["arch"]}, '
                 f'mixer_cfg={cfg["mixer_cfg"]}')
    if summary['dropped']:
        lines.append('official keys without a counterpart (dropped): '
                     f'{summary["dropped"]}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> dict:
    """Parse ``argv``, convert, save and print; returns the summary."""
    parser = build_parser(
        'Convert an official ShiftwiseConv classification checkpoint '
        '(lidc54/shift-wiseConv, ShiftWise_v1 / ShiftWise_v2) to an '
        'mmpretrain checkpoint for slak_mm (configs/sw_t_in1k.py).',
        ['model', 'model_ema'])
    parser.add_argument(
        '--version',
        choices=['auto'] + sorted(SW_VERSIONS),
        default='auto',
        help='official backbone (default: detected from the keys)')
    parser.add_argument(
        '--ghost-ratio',
        type=float,
        default=0.23,
        help='ghost ratio of the trained model (default: 0.23)')
    parser.add_argument(
        '--num-reps',
        type=int,
        default=4,
        help='N_rep of the trained model (default: 4; not stored in the '
        'weights)')
    args = parser.parse_args(argv)
    if args.num_reps < 1:
        parser.error('--num-reps must be >= 1')

    def convert(weights):
        state_dict, summary = convert_sw_state_dict(
            weights,
            args.version,
            ghost_ratio=args.ghost_ratio,
            num_reps=args.num_reps)
        meta = dict(
            sw_version=summary['version'],
            backbone_cfg=summary['backbone_cfg'])
        return state_dict, summary, meta

    return run(parser, args, convert, format_sw_summary)


if __name__ == '__main__':
    main()
