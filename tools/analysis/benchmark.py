"""Speed of SLaK (and ShiftWise) versus mmpretrain's ConvNeXt, as full
classifiers.

Builds, for every size in ``--models``, SLaK (this package) and ConvNeXt
(``mmpretrain.models.ConvNeXt``) of the same size, each as backbone
(``out_indices=-1``, pooled and normed ``(N, C)`` output) + a 1000-way
``nn.Linear`` head, and times at every batch size of ``--batch-sizes``:

- ``train``: one training step (forward, cross-entropy, backward, AdamW
  step) in train mode; also reported split into forward / backward /
  optimizer;
- ``eval``: one forward in eval mode under ``torch.no_grad()``;
- ``deploy``: the same with SLaK re-parameterized
  (``switch_to_deploy()``); ConvNeXt has no deploy form, its ``eval``
  row is the reference.

``--official-reference`` adds "SLaK-official": SLaK built with
``fast_path=False``, i.e. the official structure (three ``nn.Conv2d`` +
BN per block, PyTorch's own kernels).

``--shiftwise v1 v2`` adds "SW-v1" / "SW-v2": ``ShiftWiseV1`` /
``ShiftWiseV2`` of the same size (their default kernels, SW strip convs on
the CPU fast path), timed in ``train`` and ``eval`` (their deploy form only
sums the ``N_path`` convs, which the forward already does); with
``--official-reference`` also "SW-v1-plain" / "SW-v2-plain"
(``fast_path=False``: the plain strip convs).

The variants of one size, batch and phase are timed round-robin (warm-up
rounds, then ``--repeats`` rounds that each time every variant once), so
that a load that changes over time (a shared machine) affects them alike;
the table gives the median. Ratios are model / ConvNeXt of the same size
and batch (``train`` to ``train``, ``eval`` and ``deploy`` to ``eval``):
the median over the rounds of the per-round ratio (the JSON file also
has the ratio of the medians).
Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during one
iteration minus the memory allocated before it; on CPU the same quantity
from the torch profiler's memory events (tensor memory only, allocations
attributed to the op start; transient workspaces inside one kernel are
not seen).

Writes ``benchmark.json`` and ``benchmark.md`` to ``--out-dir`` and
prints the table. Example (``docs/speed.md``)::

    python tools/analysis/benchmark.py --models tiny --batch-sizes 1 8 \\
        --repeats 5 --threads 2 --official-reference
    python tools/analysis/benchmark.py --models tiny --batch-sizes 1 \\
        --repeats 3 --warmup 1 --threads 1 --shiftwise v1 v2 \\
        --official-reference --modes train eval
"""
import argparse
import copy
import datetime
import gc
import json
import os
import os.path as osp
import platform
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Arguments of the backbones for every size. ``SLaK`` gets
#: ``out_indices=-1`` (default), ``ConvNeXt`` likewise; the classifier adds
#: a linear head on the last stage's width. ``sw`` (optional) holds the
#: arguments of both ShiftWise backbones (``--shiftwise``); their ``arch``
#: names follow the official repository (SW-v2-T has its own depths and
#: widths, ``[3, 3, 18, 3]`` / ``80..640``).
SIZES = {
    size:
    dict(slak=dict(arch=size), convnext=dict(arch=size), sw=dict(arch=size))
    for size in ('tiny', 'small', 'base')
}
#: ``--shiftwise`` choices: variant name -> backbone class name.
SHIFTWISE = {'v1': 'ShiftWiseV1', 'v2': 'ShiftWiseV2'}
SIZE_ALIASES = {'t': 'tiny', 's': 'small', 'b': 'base'}
MODES = ('train', 'eval', 'deploy')
#: The targets of issue 7 for tiny: (model, mode, maximum ratio).
TARGETS = (
    ('SLaK', 'eval', 1.2),
    ('SLaK', 'deploy', 1.1),
    ('SLaK', 'train', 1.5),
)


class Classifier(nn.Module):
    """``backbone`` (returning a tuple whose last entry is ``(N, C)``) +
    ``nn.Linear(C, num_classes)``; input ``(N, 3, H, W)``, output
    ``(N, num_classes)``."""

    def __init__(self,
                 backbone: nn.Module,
                 channels: int,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1])


def parse_args(argv: Optional[List[str]] = None,
               sizes: Optional[dict] = None) -> argparse.Namespace:
    sizes = SIZES if sizes is None else sizes
    parser = argparse.ArgumentParser(
        description='Time SLaK (train / eval / deploy) against ConvNeXt.')
    parser.add_argument(
        '--models',
        nargs='+',
        default=['tiny'],
        help=f'sizes to build, SLaK and ConvNeXt each: {sorted(sizes)} '
        f'(or {sorted(SIZE_ALIASES)})')
    parser.add_argument(
        '--modes',
        nargs='+',
        default=list(MODES),
        choices=MODES,
        help='what to time (default: all)')
    parser.add_argument('--batch-sizes', nargs='+', type=int, default=[1, 8])
    parser.add_argument(
        '--input-size', type=int, default=224, help='square input size')
    parser.add_argument(
        '--repeats', type=int, default=5, help='timed rounds (median)')
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed rounds first')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch.set_num_threads (CPU); default: torch\'s choice')
    parser.add_argument(
        '--out-dir',
        default='work_dirs/benchmark',
        help='where benchmark.json and benchmark.md are written')
    parser.add_argument(
        '--official-reference',
        action='store_true',
        help='also time SLaK with fast_path=False (official structure), '
        'and the --shiftwise models with fast_path=False ("-plain")')
    parser.add_argument(
        '--shiftwise',
        nargs='+',
        default=[],
        choices=sorted(SHIFTWISE),
        help='also time ShiftWiseV1 / ShiftWiseV2 of every size ("SW-v1", '
        '"SW-v2"; train and eval)')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='run every model and input in channels_last memory format')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='wrap every model in torch.compile (compiled in warm-up)')
    parser.add_argument(
        '--breakdown',
        action='store_true',
        help='also time the forward per stage: downsample, token mixer '
        '(SLaK large kernel / ConvNeXt 7x7 conv) and the rest of the blocks')
    parser.add_argument(
        '--skip-memory',
        action='store_true',
        help='do not measure peak memory (saves one profiled iteration)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    names = []
    for name in args.models:
        name = SIZE_ALIASES.get(name, name)
        if name not in sizes:
            parser.error(f'unknown model size {name!r}; choose from '
                         f'{sorted(sizes)}')
        if args.shiftwise and 'sw' not in sizes[name]:
            parser.error(f'model size {name!r} has no ShiftWise arguments '
                         '(`sw`) for --shiftwise')
        names.append(name)
    args.models = names
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    return args


# ----------------------------------------------------------------------
# models
# ----------------------------------------------------------------------
def build_variants(size_cfg: dict, args) -> Dict[str, Classifier]:
    """The classifiers to compare for one size: ``SLaK`` (fast path, train
    form), ``SLaK-deploy``, optionally ``SLaK-official``, ``SW-v1`` /
    ``SW-v2`` (and their ``-plain`` forms), and ``ConvNeXt``."""
    from mmpretrain.models import ConvNeXt

    import slak_mm.models as slak_models
    from slak_mm.models import SLaK

    def slak(**extra):
        backbone = SLaK(
            **copy.deepcopy(size_cfg['slak']), out_indices=-1, **extra)
        return Classifier(backbone, backbone.channels[-1])

    variants = dict(SLaK=slak())
    if 'deploy' in args.modes:
        deploy = slak()
        deploy.eval()
        deploy.backbone.switch_to_deploy()
        variants['SLaK-deploy'] = deploy
    if args.official_reference:
        variants['SLaK-official'] = slak(fast_path=False)

    def shiftwise(version: str, **extra):
        cls = getattr(slak_models, SHIFTWISE[version])
        backbone = cls(
            **copy.deepcopy(size_cfg['sw']), out_indices=-1, **extra)
        return Classifier(backbone, backbone.channels[-1])

    for version in args.shiftwise:
        variants[f'SW-{version}'] = shiftwise(version)
        if args.official_reference:
            variants[f'SW-{version}-plain'] = shiftwise(
                version, fast_path=False)
    convnext = ConvNeXt(**copy.deepcopy(size_cfg['convnext']), out_indices=-1)
    variants['ConvNeXt'] = Classifier(convnext, convnext.channels[-1])
    for name, model in variants.items():
        model = model.to(args.device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        variants[name] = model
    return variants


def make_forward(model: nn.Module, x: torch.Tensor,
                 compile_model: bool) -> Callable:
    model.eval()
    run = torch.compile(model) if compile_model else model

    def forward():
        model.eval()
        with torch.no_grad():
            run(x)
        return None

    return forward


def make_train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    compile_model: bool, sync: Callable) -> Callable:
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-4, weight_decay=0.05)
    run = torch.compile(model) if compile_model else model

    def step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss = F.cross_entropy(run(x), y)
        sync()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        optimizer.step()
        sync()
        t3 = time.perf_counter()
        return dict(forward=t1 - t0, backward=t2 - t1, optimizer=t3 - t2)

    return step


def make_breakdown_forward(model: nn.Module, x: torch.Tensor,
                           sync: Callable) -> Tuple[Callable, list]:
    """A forward (eval, no grad) that returns the seconds spent per stage
    in ``stage{i}.downsample``, ``stage{i}.mixer`` (the blocks' token
    mixers: ``large_kernel`` / ``depthwise_conv``) and ``stage{i}.rest``
    (the rest of the blocks: norm, MLP, layer scale, residual), measured
    with forward hooks. Also returns the hook handles (remove them after
    use)."""
    backbone = model.backbone
    handles = []
    spent: Dict[str, float] = {}
    starts: Dict[str, float] = {}

    def watch(module: nn.Module, key: str) -> None:

        def before(*_):
            sync()
            starts[key] = time.perf_counter()

        def after(*_):
            sync()
            spent[key] = spent.get(key, 0.) + time.perf_counter() - \
                starts[key]

        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))

    for i, layer in enumerate(backbone.downsample_layers):
        watch(layer, f'stage{i}.downsample')
    for i, stage in enumerate(backbone.stages):
        for block in stage:
            watch(block, f'stage{i}.blocks')
            mixer = getattr(block, 'large_kernel', None)
            if mixer is None:
                mixer = block.depthwise_conv
            watch(mixer, f'stage{i}.mixer')
    forward = make_forward(model, x, False)

    def run():
        spent.clear()
        forward()
        parts = dict(spent)
        for i in range(len(backbone.stages)):
            parts[f'stage{i}.rest'] = parts.pop(f'stage{i}.blocks') - \
                parts[f'stage{i}.mixer']
        return parts

    return run, handles


# ----------------------------------------------------------------------
# measurement
# ----------------------------------------------------------------------
def time_round_robin(fns: Dict[str, Callable], warmup: int, repeats: int,
                     sync: Callable) -> Dict[str, dict]:
    """Time every function ``repeats`` times, interleaved.

    Returns:
        dict: name -> ``dict(total=[s, ...], <part>=[s, ...])`` where the
        parts are the keys of the dict a function may return.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync()
    times = {name: dict(total=[]) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            parts = fn()
            sync()
            times[name]['total'].append(time.perf_counter() - start)
            for part, value in (parts or {}).items():
                times[name].setdefault(part, []).append(value)
    return times


def peak_memory_mb(fn: Callable, device: torch.device) -> float:
    """Peak tensor memory of one call of ``fn`` above the level before it,
    in MiB (see the module docstring)."""
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
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    level = peak = 0
    for event in events:
        if event.name == '[memory]':
            level += event.cpu_memory_usage
        else:
            level += event.self_cpu_memory_usage
        peak = max(peak, level)
    return peak / 2**20


def run_benchmark(args, sizes: dict) -> Tuple[List[dict], List[dict]]:
    """Returns the timing rows and the per-stage breakdown rows."""
    device = torch.device(args.device)
    if device.type == 'cuda':

        def sync():
            torch.cuda.synchronize(device)
    else:

        def sync():
            return None

    results, breakdown = [], []
    for size in args.models:
        # one size at a time: its models are freed before the next one
        size_results, size_breakdown = _benchmark_size(size, sizes[size], args,
                                                       device, sync)
        results += size_results
        breakdown += size_breakdown
        gc.collect()
    _add_ratios(results)
    return results, breakdown


def _benchmark_size(size: str, size_cfg: dict, args, device: torch.device,
                    sync: Callable) -> Tuple[List[dict], List[dict]]:
    torch.manual_seed(args.seed)
    print(f'[{size}] building models ...', flush=True)
    variants = build_variants(size_cfg, args)
    results, breakdown = [], []
    for batch in args.batch_sizes:
        x = torch.randn(
            batch, 3, args.input_size, args.input_size, device=device)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (batch, ), device=device)
        phases = []
        if 'train' in args.modes:
            phases.append(('train', {
                name:
                make_train_step(model, x, y, args.compile, sync)
                for name, model in variants.items()
                if not name.endswith('-deploy')
            }))
        if 'eval' in args.modes or 'deploy' in args.modes:
            phases.append(('forward', {
                name: make_forward(model, x, args.compile)
                for name, model in variants.items()
                if _in_forward_phase(name, args.modes)
            }))
        while phases:
            phase, fns = phases.pop(0)  # frees the optimizers after use
            print(
                f'[{size}] batch {batch}, {phase}: timing '
                f'{", ".join(fns)} ({args.warmup} warm-up + '
                f'{args.repeats} rounds) ...',
                flush=True)
            times = time_round_robin(fns, args.warmup, args.repeats, sync)
            for name, fn in fns.items():
                model_name, mode = _row_label(name, phase)
                median_ms = statistics.median(times[name]['total']) * 1e3
                row = dict(
                    size=size,
                    model=model_name,
                    mode=mode,
                    batch_size=batch,
                    median_ms=median_ms,
                    min_ms=min(times[name]['total']) * 1e3,
                    images_per_s=batch / median_ms * 1e3,
                    times_ms=[t * 1e3 for t in times[name]['total']])
                for part in ('forward', 'backward', 'optimizer'):
                    if part in times[name]:
                        row[f'{part}_ms'] = statistics.median(
                            times[name][part]) * 1e3
                if not args.skip_memory:
                    row['peak_memory_mb'] = peak_memory_mb(fn, device)
                results.append(row)
            fns = fn = None
            for model in variants.values():  # free the gradients
                model.zero_grad(set_to_none=True)
        if args.breakdown:
            breakdown += _run_breakdown(variants, x, size, batch, args, sync)
    return results, breakdown


def _in_forward_phase(name: str, modes) -> bool:
    """Whether a variant is timed in the forward phase: the train forms of
    SLaK and the ShiftWise models (``SW-*``) only for ``--modes eval``,
    the others (deploy forms, SLaK-official, ConvNeXt) always."""
    return 'eval' in modes or not (name == 'SLaK' or name.startswith('SW-'))


def _row_label(name: str, phase: str) -> Tuple[str, str]:
    """``(model, mode)`` of a variant's row: ``'SLaK-deploy'`` in the
    forward phase is ``('SLaK', 'deploy')``; other names are kept, with
    mode ``train`` or ``eval``."""
    if phase == 'train':
        return name, 'train'
    if name.endswith('-deploy'):
        return name[:-len('-deploy')], 'deploy'
    return name, 'eval'


def _run_breakdown(variants: Dict[str, nn.Module], x: torch.Tensor, size: str,
                   batch: int, args, sync: Callable) -> List[dict]:
    fns, handles = {}, []
    for name, model in variants.items():
        if _in_forward_phase(name, args.modes):
            fns[name], new_handles = make_breakdown_forward(model, x, sync)
            handles += new_handles
    print(
        f'[{size}] batch {batch}, per-stage breakdown of the forward ...',
        flush=True)
    try:
        times = time_round_robin(fns, args.warmup, args.repeats, sync)
    finally:
        for handle in handles:
            handle.remove()
    rows = []
    for name, parts in times.items():
        model_name, mode = _row_label(name, 'forward')
        row = dict(
            size=size,
            model=model_name,
            mode=mode,
            batch_size=batch,
            total_ms=statistics.median(parts.pop('total')) * 1e3)
        for key, values in sorted(parts.items()):
            row[f'{key}_ms'] = statistics.median(values) * 1e3
        rows.append(row)
    return rows


def _add_ratios(results: List[dict]) -> None:
    """``ratio_to_convnext``: the median over the timed rounds of the
    per-round ratio to ConvNeXt (the two were timed in the same round,
    so a load that changes between rounds cancels out);
    ``ratio_of_medians``: the ratio of the medians."""
    reference = {
        (r['size'], r['batch_size'], r['mode']): r
        for r in results if r['model'] == 'ConvNeXt'
    }
    for row in results:
        ref_mode = 'train' if row['mode'] == 'train' else 'eval'
        ref = reference.get((row['size'], row['batch_size'], ref_mode))
        if ref is None:
            row['ratio_to_convnext'] = row['ratio_of_medians'] = None
            continue
        row['ratio_to_convnext'] = statistics.median(
            a / b for a, b in zip(row['times_ms'], ref['times_ms']))
        row['ratio_of_medians'] = row['median_ms'] / ref['median_ms']


def check_targets(results: List[dict]) -> List[dict]:
    """Issue 7's targets for the tiny models, per batch size."""
    checks = []
    for row in results:
        for model, mode, limit in TARGETS:
            if row['size'] == 'tiny' and row['model'] == model and \
                    row['mode'] == mode and \
                    row['ratio_to_convnext'] is not None:
                checks.append(
                    dict(
                        target=f'SLaK-T {mode} <= {limit}x ConvNeXt-T',
                        batch_size=row['batch_size'],
                        ratio=row['ratio_to_convnext'],
                        met=row['ratio_to_convnext'] <= limit))
    return checks


# ----------------------------------------------------------------------
# output
# ----------------------------------------------------------------------
def environment(args) -> dict:
    info = dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        torch=torch.__version__,
        python=platform.python_version(),
        machine=platform.machine(),
        processor=_cpu_name(),
        cpu_count=os.cpu_count(),
        threads=torch.get_num_threads(),
        device=args.device,
        args=vars(args))
    if torch.device(args.device).type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(torch.device(args.device))
    return info


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def to_markdown(results: List[dict],
                checks: List[dict],
                env: dict,
                breakdown: Optional[List[dict]] = None) -> str:
    lines = [
        f"Device: {env['device']} ({env.get('gpu', env['processor'])}, "
        f"{env['threads']} threads), torch {env['torch']}, input "
        f"{env['args']['input_size']}x{env['args']['input_size']}, "
        f"{env['args']['repeats']} timed rounds after "
        f"{env['args']['warmup']} warm-up rounds, {env['date']}.", '',
        '| size | model | mode | batch | median ms | images/s | '
        'x ConvNeXt | fwd / bwd / optim ms | peak MiB |',
        '| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: |'
    ]
    for r in results:
        ratio = r['ratio_to_convnext']
        parts = ' / '.join(f"{r[f'{p}_ms']:.0f}"
                           for p in ('forward', 'backward', 'optimizer')
                           if f'{p}_ms' in r)
        memory = r.get('peak_memory_mb')
        lines.append(f"| {r['size']} | {r['model']} | {r['mode']} | "
                     f"{r['batch_size']} | {r['median_ms']:.1f} | "
                     f"{r['images_per_s']:.2f} | "
                     f"{'-' if ratio is None else f'{ratio:.2f}'} | "
                     f"{parts or '-'} | "
                     f"{'-' if memory is None else f'{memory:.0f}'} |")
    if breakdown:
        stages = sorted({
            k.split('.')[0]
            for r in breakdown
            for k in r if k.startswith('stage')
        })
        lines += [
            '', 'Forward per stage, ms: downsample / token mixer / rest of '
            'the blocks (norm, MLP, layer scale, residual).', '',
            '| size | model | mode | batch | total ms | ' +
            ' | '.join(stages) + ' |', '| --- | --- | --- | ---: | ---: | ' +
            ' | '.join('---' for _ in stages) + ' |'
        ]
        for r in breakdown:
            cells = [
                ' / '.join(f"{r.get(f'{st}.{part}_ms', 0.):.1f}"
                           for part in ('downsample', 'mixer', 'rest'))
                for st in stages
            ]
            lines.append(f"| {r['size']} | {r['model']} | {r['mode']} | "
                         f"{r['batch_size']} | {r['total_ms']:.1f} | " +
                         ' | '.join(cells) + ' |')
    if checks:
        lines += [
            '', '| target | batch | ratio | met |', '| --- | ---: | '
            '---: | --- |'
        ]
        for c in checks:
            lines.append(f"| {c['target']} | {c['batch_size']} | "
                         f"{c['ratio']:.2f} | {'yes' if c['met'] else 'no'} "
                         '|')
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
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    env = environment(args)
    results, breakdown = run_benchmark(args, sizes)
    checks = check_targets(results)
    markdown = to_markdown(results, checks, env, breakdown)
    os.makedirs(args.out_dir, exist_ok=True)
    json_path = osp.join(args.out_dir, 'benchmark.json')
    md_path = osp.join(args.out_dir, 'benchmark.md')
    report = dict(
        environment=env, results=results, breakdown=breakdown, targets=checks)
    with open(json_path, 'w') as f:
        json.dump(report, f, indent=2)
    with open(md_path, 'w') as f:
        f.write(markdown)
    print(markdown, flush=True)
    print(f'Wrote {json_path} and {md_path}.')
    return dict(report, json=json_path, markdown=md_path)


if __name__ == '__main__':
    main()
