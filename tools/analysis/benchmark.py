"""Speed of SLaK and ShiftWise against mmpretrain's ConvNeXt of the same
size, as 1000-way mmpretrain ``ImageClassifier``s, timed round-robin with
``torch.utils.benchmark`` in ``train``, ``eval`` and ``deploy`` mode.

Writes ``benchmark.json`` and ``benchmark.md`` to ``--out-dir`` and prints
the table; docs/speed.md describes the method and the results, e.g.::

    python tools/analysis/benchmark.py --models tiny --batch-sizes 1 8 \\
        --repeats 5 --threads 2 --official-reference [--shiftwise v1 v2]
"""
import argparse
import copy
import datetime
import json
import os
import os.path as osp
import platform
import statistics
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS, DefaultScope
from torch.nn.modules.module import (register_module_forward_hook,
                                     register_module_forward_pre_hook)
from torch.utils.benchmark import Timer

#: Backbone arguments per size: ``slak`` (SLaK), ``convnext`` (ConvNeXt)
#: and ``sw`` (both ShiftWise versions; needed for ``--shiftwise``).
SIZES = {
    size:
    dict(slak=dict(arch=size), convnext=dict(arch=size), sw=dict(arch=size))
    for size in ('tiny', 'small', 'base')
}
SIZE_ALIASES = {'t': 'tiny', 's': 'small', 'b': 'base'}
SHIFTWISE = {'v1': 'slak_mm.ShiftWiseV1', 'v2': 'slak_mm.ShiftWiseV2'}
#: ``--dtype``: the autocast dtype of the timed calls (None: plain fp32).
DTYPES = dict(fp32=None, fp16=torch.float16, bf16=torch.bfloat16)
MODES = ('train', 'eval', 'deploy')
TRAIN_PARTS = ('forward', 'backward', 'optimizer')
#: Speed targets of the tiny models (docs/speed.md): model, mode and the
#: largest ratio to ConvNeXt-T.
TARGETS = (('SLaK', 'eval', 1.2), ('SLaK', 'deploy', 1.1), ('SLaK', 'train',
                                                            1.5))


def parse_args(argv: Optional[List[str]] = None,
               sizes: Optional[dict] = None) -> argparse.Namespace:
    """Parse the command line; ``--models`` accepts the keys of ``sizes``
    (default :data:`SIZES`). Exits with a message (``SystemExit``) for an
    unknown size, a size without ``sw`` under ``--shiftwise``,
    ``--repeats < 1`` or ``--warmup < 0``."""
    sizes = SIZES if sizes is None else sizes
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add = parser.add_argument
    add('--models',
        nargs='+',
        default=['tiny'],
        help=f'sizes: {sorted(sizes)} (or {sorted(SIZE_ALIASES)})')
    add('--modes', nargs='+', default=list(MODES), choices=MODES)
    add('--batch-sizes', nargs='+', type=int, default=[1, 8])
    add('--input-size', type=int, default=224, help='square input size')
    add('--repeats', type=int, default=5, help='timed rounds (median)')
    add('--warmup', type=int, default=2, help='untimed rounds first')
    add('--device', default='cpu', help='cpu or cuda[:i]')
    add('--dtype',
        default='fp32',
        choices=list(DTYPES),
        help='autocast dtype of every timed call; training with fp16 also '
        'scales the loss (GradScaler), as AmpOptimWrapper does')
    add('--threads', type=int, help='default: torch.get_num_threads()')
    add('--out-dir', default='work_dirs/benchmark')
    add('--official-reference',
        action='store_true',
        help='also SLaK and the --shiftwise models with fast_path=False')
    add('--shiftwise', nargs='+', default=[], choices=sorted(SHIFTWISE))
    add('--channels-last', action='store_true')
    add('--compile', action='store_true', help='torch.compile every model')
    add('--breakdown',
        action='store_true',
        help='also time the forward per stage: downsample, token mixer, '
        'rest of the blocks')
    add('--skip-memory', action='store_true', help='no peak memory')
    add('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    args.models = [SIZE_ALIASES.get(name, name) for name in args.models]
    for name in args.models:
        if name not in sizes:
            parser.error(f'--models: unknown size {name!r}; choose from '
                         f'{sorted(sizes)}')
        if args.shiftwise and 'sw' not in sizes[name]:
            parser.error(f'--shiftwise: size {name!r} has no `sw` arguments')
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    args.threads = args.threads or torch.get_num_threads()
    return args


def build_variants(size_cfg: dict, args) -> Dict[str, nn.Module]:
    """The classifiers of one size by row name (``SLaK``, ``SLaK-deploy``,
    ``SLaK-official``, ``SW-v1[-plain]``, ..., ``ConvNeXt``)."""
    from mmpretrain.models import ImageClassifier

    def build(type_: str, key: str, **extra) -> nn.Module:
        cfg = dict(copy.deepcopy(size_cfg[key]), type=type_, **extra)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            backbone = MODELS.build(dict(cfg, out_indices=-1))
            model = ImageClassifier(
                backbone,
                head=dict(
                    type='LinearClsHead',
                    num_classes=1000,
                    in_channels=backbone.channels[-1]))
        model = model.to(args.device)
        return model.to(memory_format=torch.channels_last) \
            if args.channels_last else model

    variants = dict(SLaK=build('slak_mm.SLaK', 'slak'))
    if 'deploy' in args.modes:
        variants['SLaK-deploy'] = build('slak_mm.SLaK', 'slak', deploy=True)
    if args.official_reference:
        variants['SLaK-official'] = build(
            'slak_mm.SLaK', 'slak', mixer_cfg=dict(fast_path=False))
    for version in args.shiftwise:
        variants[f'SW-{version}'] = build(SHIFTWISE[version], 'sw')
        if args.official_reference:
            variants[f'SW-{version}-plain'] = build(
                SHIFTWISE[version], 'sw', mixer_cfg=dict(fast_path=False))
    variants['ConvNeXt'] = build('mmpretrain.ConvNeXt', 'convnext')
    return variants


def autocast(x: torch.Tensor, dtype: Optional[torch.dtype]):
    """``torch.autocast`` on the device of ``x`` (off for None)."""
    return torch.autocast(
        x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def forward_fn(model: nn.Module,
               x: torch.Tensor,
               compile_model=False,
               dtype: Optional[torch.dtype] = None):
    """One eval-mode forward of ``x`` ``(N, 3, H, W)`` under ``no_grad``
    (the ``eval`` and ``deploy`` rows), autocast to ``dtype``."""
    run = torch.compile(model) if compile_model else model

    def forward():
        model.eval()
        with torch.no_grad(), autocast(x, dtype):
            run(x, mode='tensor')

    return forward


def train_step_fn(model: nn.Module,
                  x: torch.Tensor,
                  y: torch.Tensor,
                  compile_model: bool,
                  sync: Callable,
                  dtype: Optional[torch.dtype] = None) -> Callable:
    """One AdamW step on ``(x, y)``, the forward autocast to ``dtype``
    (with loss scaling for fp16); returns its parts in seconds
    (``forward`` with the loss, ``backward``, ``optimizer``)."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-4, weight_decay=0.05)
    scaler = torch.amp.GradScaler(
        x.device.type, enabled=dtype is torch.float16)
    run = torch.compile(model) if compile_model else model

    def step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        marks = [time.perf_counter()]

        def lap():
            sync()
            marks.append(time.perf_counter())

        with autocast(x, dtype):
            loss = F.cross_entropy(run(x, mode='tensor'), y)
        lap()
        scaler.scale(loss).backward()
        lap()
        scaler.step(optimizer)
        scaler.update()
        lap()
        return {p: b - a for p, a, b in zip(TRAIN_PARTS, marks, marks[1:])}

    return step


def breakdown_fn(model: nn.Module, x: torch.Tensor, sync: Callable):
    """A forward (as :func:`forward_fn`) returning the seconds spent in
    ``stage{i}.downsample``, ``stage{i}.mixer`` (the blocks'
    ``large_kernel``, or ConvNeXt's ``depthwise_conv``) and
    ``stage{i}.rest`` (the rest of the blocks), from global module hooks
    registered for the call."""
    backbone, keys = model.backbone, {}
    for i, stage in enumerate(backbone.stages):
        keys[backbone.downsample_layers[i]] = f'stage{i}.downsample'
        for block in stage:
            keys[block] = f'stage{i}.blocks'
            mixer = getattr(block, 'large_kernel', None)
            keys[block.depthwise_conv if mixer is None else mixer] = \
                f'stage{i}.mixer'
    forward = forward_fn(model, x)

    def run():
        spent = defaultdict(float)

        def clock(sign):

            def hook(module, *_):
                if module in keys:  # start subtracted, end added
                    sync()
                    spent[keys[module]] += sign * time.perf_counter()

            return hook

        handles = [
            register_module_forward_pre_hook(clock(-1)),
            register_module_forward_hook(clock(1))
        ]
        try:
            forward()
        finally:
            for handle in handles:
                handle.remove()
        for i in range(len(backbone.stages)):
            spent[f'stage{i}.rest'] = spent.pop(f'stage{i}.blocks') - \
                spent[f'stage{i}.mixer']
        return dict(spent)

    return run


def time_round_robin(fns: Dict[str, Callable], warmup: int, repeats: int,
                     threads: int) -> Dict[str, dict]:
    """Time every function once per round, so that a load changing over
    time affects them alike: ``warmup`` untimed rounds, then ``repeats``
    rounds of ``Timer.blocked_autorange(min_run_time=0)`` (one warm-up and
    one timed call; the Timer synchronises CUDA).

    Returns:
        dict: name -> ``dict(total=[s, ...], <part>=[s, ...])`` per round;
        the parts are those of the dict the timed call returned.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    outputs = {name: [] for name in fns}
    timers = {
        name:
        Timer(
            'out.append(fn())',
            globals=dict(fn=fn, out=outputs[name]),
            num_threads=threads)
        for name, fn in fns.items()
    }
    times = {name: defaultdict(list) for name in fns}
    for _ in range(repeats):
        for name, timer in timers.items():
            measurement = timer.blocked_autorange(min_run_time=0)
            times[name]['total'].append(measurement.median)
            for part, seconds in (outputs[name][-1] or {}).items():
                times[name][part].append(seconds)
    return times


def peak_memory_mb(fn: Callable, device: torch.device) -> float:
    """Peak tensor memory of one call of ``fn`` above the level before it,
    in MiB: ``torch.cuda.max_memory_allocated`` on CUDA, the torch
    profiler's memory events on the CPU (allocations inside one kernel
    are not seen)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile
    with profile(
            activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    level = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        level += event.cpu_memory_usage if event.name == '[memory]' else \
            event.self_cpu_memory_usage
        peak = max(peak, level)
    return peak / 2**20


def benchmark_size(size: str, size_cfg: dict, args):
    """Timing rows and per-stage breakdown rows of one size."""
    device = torch.device(args.device)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    torch.manual_seed(args.seed)
    print(f'[{size}] building models ...', flush=True)
    variants = build_variants(size_cfg, args)
    train_names = [n for n in variants if not n.endswith('-deploy')]
    # the train forms of SLaK and SW-* are timed forward only for `eval`
    forward_names = [
        n for n in variants
        if 'eval' in args.modes or not (n == 'SLaK' or n.startswith('SW-'))
    ]
    results, breakdown = [], []
    for batch in args.batch_sizes:
        x = torch.randn(
            batch, 3, args.input_size, args.input_size, device=device)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (batch, ), device=device)
        phases = []
        if 'train' in args.modes:
            phases.append(
                ('train', lambda m: train_step_fn(m, x, y, args.compile, sync,
                                                  DTYPES[args.dtype]),
                 train_names))
        if 'eval' in args.modes or 'deploy' in args.modes:
            phases.append(
                ('eval',
                 lambda m: forward_fn(m, x, args.compile, DTYPES[args.dtype]),
                 forward_names))
        if args.breakdown:
            phases.append(('breakdown', lambda m: breakdown_fn(m, x, sync),
                           forward_names))
        for phase, make, names in phases:
            fns = {name: make(variants[name]) for name in names}
            print(
                f'[{size}] batch {batch}, {phase}: timing '
                f'{", ".join(fns)} ({args.warmup} warm-up + '
                f'{args.repeats} rounds) ...',
                flush=True)
            times = time_round_robin(fns, args.warmup, args.repeats,
                                     args.threads)
            for name, fn in fns.items():
                total = [t * 1e3 for t in times[name].pop('total')]
                model, deploy = name.split('-deploy')[0], '-deploy' in name
                row = dict(
                    size=size,
                    model=model,
                    batch_size=batch,
                    mode='deploy'
                    if deploy else 'train' if phase == 'train' else 'eval')
                row.update((f'{key}_ms', statistics.median(values) * 1e3)
                           for key, values in sorted(times[name].items()))
                if phase == 'breakdown':
                    breakdown.append(
                        dict(row, total_ms=statistics.median(total)))
                    continue
                row.update(
                    median_ms=statistics.median(total),
                    min_ms=min(total),
                    times_ms=total)
                row['images_per_s'] = batch / row['median_ms'] * 1e3
                if not args.skip_memory:
                    row['peak_memory_mb'] = peak_memory_mb(fn, device)
                results.append(row)
            fns = fn = None  # frees the optimizers
            for net in variants.values():
                net.zero_grad(set_to_none=True)
    return results, breakdown


def add_ratios(results: List[dict]) -> None:
    """Add ``ratio_to_convnext`` to every row: the median over the rounds
    of the per-round ratio to ConvNeXt of the same size and batch (train
    to train, eval and deploy to eval), timed in the same rounds; and
    ``ratio_of_medians``. Both are None without a ConvNeXt row."""
    reference = {
        (r['size'], r['batch_size'], r['mode']): r
        for r in results if r['model'] == 'ConvNeXt'
    }
    for row in results:
        mode = 'train' if row['mode'] == 'train' else 'eval'
        ref = reference.get((row['size'], row['batch_size'], mode))
        row['ratio_to_convnext'] = ref and statistics.median(
            a / b for a, b in zip(row['times_ms'], ref['times_ms']))
        row['ratio_of_medians'] = ref and row['median_ms'] / ref['median_ms']


def check_targets(results: List[dict]) -> List[dict]:
    """The :data:`TARGETS` checks of the ``tiny`` rows, per batch size."""
    return [
        dict(
            target=f'SLaK-T {mode} <= {limit}x ConvNeXt-T',
            batch_size=row['batch_size'],
            ratio=row['ratio_to_convnext'],
            met=row['ratio_to_convnext'] <= limit) for row in results
        for model, mode, limit in TARGETS
        if (row['size'], row['model'],
            row['mode']) == ('tiny', model,
                             mode) and row['ratio_to_convnext'] is not None
    ]


def environment(args) -> dict:
    """Date, versions, processor, threads and arguments of the run."""
    processor = platform.processor()
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            names = [
                line.split(':', 1)[1].strip() for line in f
                if line.startswith('model name')
            ]
        processor = (names or [processor])[0]
    env = dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        torch=torch.__version__,
        python=platform.python_version(),
        machine=platform.machine(),
        processor=processor,
        cpu_count=os.cpu_count(),
        threads=args.threads,
        device=args.device,
        dtype=args.dtype,
        args=vars(args))
    if torch.device(args.device).type == 'cuda':
        env['gpu'] = torch.cuda.get_device_name(torch.device(args.device))
    return env


def _table(header: List[str], align: str, rows) -> List[str]:
    """A markdown table; ``align`` has an ``l`` or ``r`` per column."""
    rule = [{'l': '---', 'r': '---:'}[a] for a in align]
    return [
        '| ' + ' | '.join(map(str, r)) + ' |'
        for r in [header, rule] + list(rows)
    ]


def _result_cells(r: dict) -> tuple:
    parts = ' / '.join(f"{r[f'{p}_ms']:.0f}" for p in TRAIN_PARTS
                       if f'{p}_ms' in r)
    ratio, memory = r['ratio_to_convnext'], r.get('peak_memory_mb')
    return (r['size'], r['model'], r['mode'], r['batch_size'],
            f"{r['median_ms']:.1f}", f"{r['images_per_s']:.2f}",
            '-' if ratio is None else f'{ratio:.2f}', parts
            or '-', '-' if memory is None else f'{memory:.0f}')


def to_markdown(results: List[dict],
                checks: List[dict],
                env: dict,
                breakdown: Optional[List[dict]] = None) -> str:
    """The results (and breakdown, target checks) as markdown tables."""
    args = env['args']
    lines = [
        f"Device: {env['device']} ({env.get('gpu', env['processor'])}, "
        f"{env['threads']} threads), {env['dtype']}, torch {env['torch']}, "
        f"input "
        f"{args['input_size']}x{args['input_size']}, {args['repeats']} "
        f"timed rounds after {args['warmup']} warm-up rounds, "
        f"{env['date']}.", ''
    ] + _table([
        'size', 'model', 'mode', 'batch', 'median ms', 'images/s',
        'x ConvNeXt', 'fwd / bwd / optim ms', 'peak MiB'
    ], 'lllrrrrlr', map(_result_cells, results))
    if breakdown:
        stages = sorted({
            k.split('.')[0]
            for r in breakdown
            for k in r if k.startswith('stage')
        })
        lines += [
            '', 'Forward per stage, ms: downsample / token mixer / '
            'rest of the blocks (norm, MLP, layer scale, residual).', ''
        ] + _table(['size', 'model', 'mode', 'batch', 'total ms'] + stages,
                   'lllrr' + 'l' * len(stages),
                   [(r['size'], r['model'], r['mode'], r['batch_size'],
                     f"{r['total_ms']:.1f}",
                     *(' / '.join(f"{r.get(f'{stage}.{part}_ms', 0.):.1f}"
                                  for part in ('downsample', 'mixer', 'rest'))
                       for stage in stages)) for r in breakdown])
    if checks:
        lines += [''] + _table(['target', 'batch', 'ratio', 'met'], 'lrrl', [
            (c['target'], c['batch_size'], f"{c['ratio']:.2f}",
             'yes' if c['met'] else 'no') for c in checks
        ])
    return '\n'.join(lines) + '\n'


def main(argv: Optional[List[str]] = None,
         extra_sizes: Optional[dict] = None) -> dict:
    """Run the benchmark.

    Args:
        argv (list[str], optional): Command-line arguments; default
            ``sys.argv[1:]``.
        extra_sizes (dict, optional): More sizes, in the form of
            :data:`SIZES` (e.g. a toy architecture for tests).

    Returns:
        dict: ``dict(environment=..., results=[...], breakdown=[...],
        targets=[...], json=path, markdown=path)``.
    """
    sizes = dict(SIZES, **(extra_sizes or {}))
    args = parse_args(argv, sizes)
    torch.set_num_threads(args.threads)
    env = environment(args)
    results, breakdown = [], []
    for size in args.models:  # one size at a time: freed before the next
        rows, stage_rows = benchmark_size(size, sizes[size], args)
        results += rows
        breakdown += stage_rows
    add_ratios(results)
    checks = check_targets(results)
    report = dict(
        environment=env, results=results, breakdown=breakdown, targets=checks)
    markdown = to_markdown(results, checks, env, breakdown)
    os.makedirs(args.out_dir, exist_ok=True)
    paths = dict(
        json=osp.join(args.out_dir, 'benchmark.json'),
        markdown=osp.join(args.out_dir, 'benchmark.md'))
    with open(paths['json'], 'w') as f:
        json.dump(report, f, indent=2)
    with open(paths['markdown'], 'w') as f:
        f.write(markdown)
    print(markdown, flush=True)
    print(f"Wrote {paths['json']} and {paths['markdown']}.")
    return dict(report, **paths)


if __name__ == '__main__':
    main()
