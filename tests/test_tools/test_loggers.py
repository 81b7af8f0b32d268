"""mmengine's visualization backends from a slak_mm config: one line adds
TensorBoard next to the local JSON log, and the curves that
tools/analysis/plot_logs.py draws (from the JSON log) are the TensorBoard
scalars, step for step.

W&B (``WandbVisBackend``) needs ``wandb`` and an account or offline mode;
it is not installed in the pinned environment and not tested.
"""
import glob
import os.path as osp
import sys

import matplotlib.figure
import numpy as np
import pytest

from ..conftest import REPO_ROOT
from ..tool_runs import import_tool, run_tool, single_thread_env

MINI_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                       'slak_mini_in1k.py')
#: The line a user adds to a config (README "Loggers").
TENSORBOARD_LINE = (
    "visualizer = dict(vis_backends=[dict(type='LocalVisBackend'"
    "), dict(type='TensorboardVisBackend')])")


def _plotted_curves(monkeypatch, argv):
    """Run plot_logs.main(argv) and return ``{panel title: (x, y)}`` of the
    figure it saves (the drawn lines' data)."""
    saved = []
    savefig = matplotlib.figure.Figure.savefig

    def record(fig, *args, **kwargs):
        saved.append(fig)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', record)
    import_tool('analysis/plot_logs.py').main(argv)
    fig, = saved
    curves = {}
    for ax in fig.axes:
        line, = ax.lines
        curves[ax.get_title()] = (np.asarray(line.get_xdata()),
                                  np.asarray(line.get_ydata()))
    return curves


def _tensorboard_scalars(work_dir):
    """``{tag: (steps, values)}`` of the run's TensorBoard event file."""
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    events, = glob.glob(
        osp.join(work_dir, '*', 'vis_data', 'events.out.tfevents.*'))
    acc = EventAccumulator(events)
    acc.Reload()
    return {
        tag: (np.array([e.step for e in acc.Scalars(tag)]),
              np.array([e.value for e in acc.Scalars(tag)]))
        for tag in acc.Tags()['scalars']
    }


def test_tensorboard_scalars_match_plotted_curves(tmp_path, imagenet_mini,
                                                  monkeypatch):
    pytest.importorskip('tensorboard', reason='requirements/deploy.txt')
    config = tmp_path / 'slak_mini_tensorboard.py'
    config.write_text(f'_base_ = [{MINI_CONFIG!r}]\n{TENSORBOARD_LINE}\n')
    work_dir = tmp_path / 'work'
    # 64 images / 16 per batch: 4 iterations, each logged
    run_tool([
        sys.executable, 'tools/train.py',
        str(config), '--work-dir',
        str(work_dir), '--cfg-options',
        f'train_dataloader.dataset.data_root={imagenet_mini}',
        'train_dataloader.dataset.indices=64', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', 'val_cfg=None', 'val_dataloader=None',
        'val_evaluator=None', 'default_hooks.checkpoint.interval=1'
    ],
             env=single_thread_env(),
             timeout=600)

    scalars = _tensorboard_scalars(str(work_dir))
    curves = _plotted_curves(monkeypatch, [
        str(work_dir), '--keys', 'loss', 'lr', '--out',
        str(tmp_path / 'curves.png')
    ])
    assert set(curves) == {'loss', 'lr'}
    assert (tmp_path / 'curves.png').is_file()
    for key, (x, y) in curves.items():
        steps, values = scalars[key]
        np.testing.assert_array_equal(steps, [1, 2, 3, 4])
        # TensorBoard's step is the global iteration; the plot of an
        # epoch-based run is against the epoch (4 iterations per epoch)
        np.testing.assert_allclose(x, steps / 4, rtol=1e-12)
        # TensorBoard stores float32; the JSON log Python floats
        np.testing.assert_allclose(y, values, rtol=1e-6, atol=0)
    # the loss of a real run, not a constant
    assert len(set(curves['loss'][1])) > 1
