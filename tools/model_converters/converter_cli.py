"""Command-line code shared by the official-checkpoint converters.

Not a command itself: ``slak_to_mmpretrain.py``, ``slak_to_mmseg.py`` and
``slak_to_mmdet.py`` call :func:`slak_main` with their task, and
``sw_to_mmpretrain.py`` builds on :func:`build_parser` / :func:`run`. Each
converter reads the official file (:func:`slak_mm.converters.
load_official_checkpoint`), converts its weights with
:mod:`slak_mm.converters`, saves ``dict(meta=..., state_dict=...)`` and
prints a summary.
"""
import argparse
from typing import Callable, List, Optional, Tuple

import torch

from slak_mm.converters import (TASK_TOOLBOXES, OfficialCheckpointError,
                                convert_slak_state_dict,
                                load_official_checkpoint, select_weights)


def build_parser(description: str,
                 key_choices: List[str]) -> argparse.ArgumentParser:
    """The arguments every converter takes: ``src``, ``dst``, ``--key``
    (default: the first of ``key_choices``) and ``--unsafe-load``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument(
        '--key',
        choices=key_choices,
        default=key_choices[0],
        help=f'entry that holds the weights (default: {key_choices[0]})')
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='unpickle with torch.load(weights_only=False); runs code '
        'from the file, only for files from a trusted source (the default '
        'safe loader allows argparse.Namespace besides tensors)')
    return parser


def run(parser: argparse.ArgumentParser, args: argparse.Namespace,
        convert: Callable[[dict], Tuple[dict, dict, dict]],
        describe: Callable[[dict], str]) -> dict:
    """Load ``args.src``, convert its ``args.key`` weights, save
    ``args.dst`` and print ``describe(summary)``.

    ``convert(weights)`` returns the state dict, the summary and the
    ``meta`` entries besides ``converted_from`` / ``source_key``. An
    :class:`~slak_mm.converters.OfficialCheckpointError` ends the program
    with its message and exit status 2.

    Returns:
        dict: The summary, with ``source_key`` added.
    """
    try:
        checkpoint = load_official_checkpoint(
            args.src, unsafe_load=args.unsafe_load)
        source_key, weights = select_weights(checkpoint, args.key)
        state_dict, summary, meta = convert(weights)
    except OfficialCheckpointError as err:
        parser.exit(2, f'error: {err}\n')
    summary['source_key'] = source_key
    meta = dict(converted_from=args.src, source_key=source_key, **meta)
    torch.save(dict(meta=meta, state_dict=state_dict), args.dst)
    print(describe(summary))
    print(f'saved {args.dst}')
    return summary


def format_slak_summary(summary: dict) -> str:
    """A human-readable report of a SLaK conversion's summary."""
    lines = [
        f'task: {summary["task"]} (weights from `{summary["source_key"]}`)',
        f'large-kernel key variant: {summary["variant"]}',
        f'tensors converted: {summary["num_tensors"]} '
        f'(backbone {summary["num_backbone"]}, other '
        f'{summary["num_other"]})',
        f'non-zero fraction of backbone conv/linear weights: '
        f'{summary["density"]:.4f} (sparsity '
        f'{1 - summary["density"]:.4f})',
        f'non-zero fraction of the large kernels: '
        f'{summary["large_kernel_density"]:.4f}',
    ]
    if summary['dropped']:
        lines.append(f'official keys without a counterpart (dropped): '
                     f'{summary["dropped"]}')
    if summary['backbone_cfg']:
        options = ' '.join(f'model.backbone.{k}={v}'
                           for k, v in summary['backbone_cfg'].items())
        lines.append(f'this variant needs: --cfg-options {options}')
    return '\n'.join(lines)


def _convert_slak(task: str, weights: dict) -> Tuple[dict, dict, dict]:
    state_dict, summary = convert_slak_state_dict(weights, task)
    meta = dict(
        task=task,
        kernel_key_variant=summary['variant'],
        density=summary['density'],
        backbone_cfg=summary['backbone_cfg'])
    return state_dict, summary, meta


def slak_main(task: str, argv: Optional[List[str]] = None) -> dict:
    """Command line of ``slak_to_<toolbox>.py`` for ``task`` (``'cls'``,
    ``'seg'`` or ``'det'``); returns the conversion summary."""
    parser = build_parser(
        f'Convert an official SLaK {task} checkpoint (VITA-Group/SLaK) to a '
        f'{TASK_TOOLBOXES[task]} checkpoint for slak_mm.',
        ['model', 'model_ema'] if task == 'cls' else ['state_dict'])
    args = parser.parse_args(argv)
    return run(parser, args, lambda weights: _convert_slak(task, weights),
               format_slak_summary)
