"""Smoke test of tools/analysis/benchmark.py on a toy architecture (speed
itself is only measured by the script, never asserted)."""
import json

import pytest

from ..tool_runs import import_tool

TOY = dict(
    slak=dict(
        arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 16, 32]),
        kernel_size=[7, 7, 5, 3, 3]),
    convnext=dict(arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 16, 32])),
    sw=dict(
        arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 16, 32]),
        kernel_size=[7, 7, 5, 5, 3]))


def _import_benchmark():
    return import_tool('analysis/benchmark.py')


def test_benchmark_main_writes_json_and_markdown(tmp_path, capsys):
    benchmark = _import_benchmark()
    report = benchmark.main([
        '--models', 'toy', '--batch-sizes', '1', '2', '--input-size', '64',
        '--repeats', '1', '--warmup', '0', '--threads', '1', '--out-dir',
        str(tmp_path), '--official-reference', '--breakdown'
    ],
                            extra_sizes=dict(toy=TOY))
    assert report['json'] == str(tmp_path / 'benchmark.json')
    with open(report['json']) as f:
        data = json.load(f)
    assert set(data) == {'environment', 'results', 'breakdown', 'targets'}
    assert data['environment']['threads'] == 1
    rows = {
        (r['model'], r['mode'], r['batch_size']): r
        for r in data['results']
    }
    expected = {
        (model, mode, batch)
        for batch in (1, 2)
        for model, mode in [('SLaK', 'train'), (
            'SLaK', 'eval'), ('SLaK', 'deploy'), (
                'SLaK-official',
                'train'), ('SLaK-official',
                           'eval'), ('ConvNeXt', 'train'), ('ConvNeXt',
                                                            'eval')]
    }
    assert set(rows) == expected
    for key, row in rows.items():
        assert row['size'] == 'toy'
        for field in ('median_ms', 'min_ms', 'images_per_s',
                      'ratio_to_convnext', 'peak_memory_mb', 'times_ms'):
            assert field in row, (key, field)
        assert row['median_ms'] > 0 and len(row['times_ms']) == 1
        if row['mode'] == 'train':
            assert {'forward_ms', 'backward_ms', 'optimizer_ms'} <= set(row)
    assert rows[('ConvNeXt', 'eval', 1)]['ratio_to_convnext'] == 1.0
    # per-stage forward times, from forward hooks
    stages = {
        (r['model'], r['mode'], r['batch_size']): r
        for r in data['breakdown']
    }
    assert set(stages) == {k for k in expected if k[1] != 'train'}
    for row in stages.values():
        assert row['total_ms'] > 0
        for i in range(4):
            for part in ('downsample', 'mixer', 'rest'):
                assert f'stage{i}.{part}_ms' in row
    # targets are checked for the published tiny size only
    assert data['targets'] == []
    markdown = (tmp_path / 'benchmark.md').read_text()
    assert '| toy | SLaK | deploy | 2 |' in markdown
    assert 'x ConvNeXt' in markdown and 'Forward per stage' in markdown
    assert 'x ConvNeXt' in capsys.readouterr().out


def test_benchmark_target_check_and_markdown():
    benchmark = _import_benchmark()
    rows = [
        dict(size='tiny', model=m, mode=mode, batch_size=1, median_ms=ms)
        for m, mode, ms in [('ConvNeXt', 'eval',
                             10.), ('ConvNeXt', 'train',
                                    30.), ('SLaK', 'eval',
                                           11.), ('SLaK', 'deploy',
                                                  12.), ('SLaK', 'train', 60.)]
    ]
    for r in rows:
        r['images_per_s'] = 1e3 / r['median_ms']
        r['times_ms'] = [r['median_ms']] * 3
    # paired per-round ratios: a slow round for both models cancels out
    rows[-1].update(times_ms=[60., 120., 600.], median_ms=120.)
    rows[1]['times_ms'] = [30., 60., 30.]
    benchmark.add_ratios(rows)
    checks = {c['target']: c for c in benchmark.check_targets(rows)}
    assert checks['SLaK-T eval <= 1.2x ConvNeXt-T']['met']
    assert not checks['SLaK-T deploy <= 1.1x ConvNeXt-T']['met']
    assert checks['SLaK-T train <= 1.5x ConvNeXt-T']['ratio'] == 2.0
    assert rows[-1]['ratio_of_medians'] == 4.0


def test_benchmark_shiftwise_rows(tmp_path):
    """``--shiftwise v1 v2`` adds SW rows (train and eval, and the
    ``-plain`` forms with ``--official-reference``) with ratios to
    ConvNeXt; deploy-only runs skip the SW train forms."""
    benchmark = _import_benchmark()
    report = benchmark.main([
        '--models', 'toy', '--batch-sizes', '1', '--input-size', '64',
        '--repeats', '1', '--warmup', '0', '--threads', '1', '--out-dir',
        str(tmp_path), '--shiftwise', 'v1', 'v2', '--official-reference',
        '--modes', 'train', 'eval', '--skip-memory', '--breakdown'
    ],
                            extra_sizes=dict(toy=TOY))
    rows = {(r['model'], r['mode']): r for r in report['results']}
    models = [
        'SLaK', 'SLaK-official', 'SW-v1', 'SW-v1-plain', 'SW-v2',
        'SW-v2-plain', 'ConvNeXt'
    ]
    assert set(rows) == {(m, mode)
                         for m in models
                         for mode in ('train', 'eval')}
    for row in rows.values():
        assert row['ratio_to_convnext'] > 0 and 'peak_memory_mb' not in row
    assert {(r['model'], r['mode'])
            for r in report['breakdown']} == {(m, 'eval')
                                              for m in models}
    markdown = (tmp_path / 'benchmark.md').read_text()
    assert '| toy | SW-v2 | train | 1 |' in markdown
    report = benchmark.main([
        '--models', 'toy', '--batch-sizes', '1', '--input-size', '64',
        '--repeats', '1', '--warmup', '0', '--out-dir',
        str(tmp_path), '--shiftwise', 'v1', '--modes', 'deploy',
        '--skip-memory'
    ],
                            extra_sizes=dict(toy=TOY))
    assert {(r['model'], r['mode'])
            for r in report['results']} == {('SLaK', 'deploy'),
                                            ('ConvNeXt', 'eval')}


def test_benchmark_shiftwise_needs_sw_arguments():
    benchmark = _import_benchmark()
    toy = {k: v for k, v in TOY.items() if k != 'sw'}
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--models', 'toy', '--shiftwise', 'v1'],
                             dict(toy=toy))
    args = benchmark.parse_args(['--models', 't', '--shiftwise', 'v2'])
    assert args.models == ['tiny'] and args.shiftwise == ['v2']


@pytest.mark.parametrize('dtype', ['bf16', 'fp16'])
def test_benchmark_autocast_dtype(tmp_path, dtype):
    """``--dtype``: the timed calls run under autocast (training with a
    GradScaler for fp16, as on the GPU rows of tools/gpu_check.sh); the
    dtype is reported with the results."""
    benchmark = _import_benchmark()
    report = benchmark.main([
        '--models', 'toy', '--batch-sizes', '2', '--input-size', '64',
        '--repeats', '1', '--warmup', '0', '--threads', '1', '--out-dir',
        str(tmp_path), '--dtype', dtype, '--modes', 'train', 'eval'
    ],
                            extra_sizes=dict(toy=TOY))
    assert report['environment']['dtype'] == dtype
    assert f'), {dtype}, torch' in open(report['markdown']).read()
    modes = {(r['model'], r['mode']) for r in report['results']}
    assert modes == {('SLaK', 'train'), ('SLaK', 'eval'),
                     ('ConvNeXt', 'train'), ('ConvNeXt', 'eval')}
    for row in report['results']:
        assert row['images_per_s'] > 0


def test_autocast_reaches_the_model():
    """The forward of an eval row computes in the autocast dtype."""
    import torch
    benchmark = _import_benchmark()
    seen = []

    class Probe(torch.nn.Module):

        def forward(self, x, mode='tensor'):
            out = torch.nn.functional.linear(x.flatten(1), torch.ones(2, 12))
            seen.append(out.dtype)
            return out

    x = torch.randn(2, 3, 2, 2)
    benchmark.forward_fn(Probe(), x, dtype=torch.bfloat16)()
    benchmark.forward_fn(Probe(), x)()
    assert seen == [torch.bfloat16, torch.float32]
