"""tools/deployment/pytorch2onnx.py: the exported ONNX files run in
onnxruntime and match the PyTorch models on real images, at other batch
sizes and image sizes than the export's example (``--dynamic``).

The reference is the model as the toolboxes load it (train form in eval
mode, CPU fast path), not the deploy form the tool exports, so the
re-parameterization is checked too. The checkpoints hold random weights
with non-trivial BN statistics (running mean / var, affine), so folding
them into the kernels matters.
"""
import glob
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import save_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm

from slak_mm.apis import build_model
from .conftest import REPO_ROOT
from .tool_runs import import_tool, run_tool, single_thread_env

pytest.importorskip('onnxruntime', reason='requirements/deploy.txt')
pytest.importorskip('onnxscript', reason='requirements/deploy.txt')

CONFIGS = osp.join(REPO_ROOT, 'tests', 'data', 'configs')
CLS_CONFIG = osp.join(CONFIGS, 'slak_mini_in1k.py')
SEG_CONFIG = osp.join(CONFIGS, 'upernet_slak_mini_ade20k.py')
#: ShiftWise: its forward assembles the kernels from the pieces (a
#: constant subgraph the tool folds)
SW_SEG_CONFIG = osp.join(CONFIGS, 'upernet_sw_mini_ade20k.py')
TOOL = osp.join(REPO_ROOT, 'tools', 'deployment', 'pytorch2onnx.py')
#: Tolerance of onnxruntime against PyTorch (float32): relative, and
#: absolute as a fraction of the largest output magnitude. Measured: max
#: abs diff / largest magnitude ~1e-6 (classification), ~2e-6
#: (segmentation).
RTOL, ATOL_SCALE = 1e-4, 1e-4


def _checkpoint(config, path):
    """Random weights, BN statistics and affine parameters away from
    their initial 0 / 1, saved as a Runner checkpoint."""
    torch.manual_seed(0)
    model = build_model(config, init_cfg=None)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    save_checkpoint(dict(state_dict=model.state_dict()), str(path))
    return str(path)


def _reference(config, ckpt):
    """The model as loaded for inference: train form, eval mode, SyncBN
    as BN (CPU)."""
    from mmengine.model import revert_sync_batchnorm
    model = build_model(config, checkpoint=ckpt, init_cfg=None)
    return revert_sync_batchnorm(model).eval()


def _preprocess(config, model, images):
    """Images through the config's test pipeline (without annotations)
    and the model's data_preprocessor: ``(N, 3, H, W)``."""
    cfg = Config.fromfile(config)
    steps = [
        t for t in cfg.test_dataloader.dataset.pipeline
        if t['type'] != 'LoadAnnotations'
    ]
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        pipeline = Compose(steps)
        data = pseudo_collate([pipeline(dict(img_path=p)) for p in images])
    with torch.no_grad():
        return model.data_preprocessor(data, False)['inputs']


def _compare(session, model, inputs):
    """onnxruntime against ``model(inputs, mode='tensor')``; returns the
    max abs and relative (to the largest magnitude) differences."""
    with torch.no_grad():
        expected = model(inputs, mode='tensor')
    got = torch.from_numpy(session.run(None, {'input': inputs.numpy()})[0])
    scale = float(expected.abs().max())
    torch.testing.assert_close(
        got, expected, rtol=RTOL, atol=ATOL_SCALE * scale)
    diff = float((got - expected).abs().max())
    return diff, diff / scale


def _export(config, tmp_path, *options):
    """Run the tool on a random checkpoint of ``config``; return the ONNX
    path, the tool's output and the PyTorch reference model."""
    ckpt = _checkpoint(config, tmp_path / 'model.pth')
    out = str(tmp_path / 'model.onnx')
    log = run_tool([sys.executable, TOOL, config, ckpt, out, *options],
                   env=single_thread_env())
    return out, log, _reference(config, ckpt)


def _session(path):
    import onnxruntime as ort
    return ort.InferenceSession(path, providers=['CPUExecutionProvider'])


def _ops(path):
    import onnx
    return {node.op_type for node in onnx.load(path).graph.node}


def test_classifier_onnx_matches_pytorch(tmp_path, imagenet_mini):
    with open(osp.join(imagenet_mini, 'meta', 'val.txt')) as f:
        images = [
            osp.join(imagenet_mini, 'val',
                     next(f).split()[0]) for _ in range(3)
        ]
    out, log, model = _export(CLS_CONFIG, tmp_path, '--shape', '64', '64',
                              '--dynamic', '--verify', '--benchmark', '1',
                              '--threads', '1')
    assert 'onnxruntime vs PyTorch: max abs diff' in log, log[-3000:]
    assert 'pytorch eager, deploy form' in log and 'ms' in log
    # deploy form: the large kernels' BN is folded (the blocks use LN)
    assert 'BatchNormalization' not in _ops(out)

    import onnx
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert meta['output'] == 'logits'
    assert meta['channel_order'] == 'RGB'
    assert meta['mean'] == '[123.675, 116.28, 103.53]'

    session = _session(out)
    inputs = _preprocess(CLS_CONFIG, model, images)
    assert inputs.shape == (3, 3, 64, 64)
    # 3 real images (the example had 2), one alone, and another size
    diffs = [
        _compare(session, model, inputs),
        _compare(session, model, inputs[:1]),
        _compare(
            session, model,
            torch.nn.functional.interpolate(
                inputs, size=(96, 80), mode='bilinear'))
    ]
    print('classification: max abs / rel diff', diffs)
    got = session.run(None, {'input': inputs.numpy()})[0]
    assert got.shape == (3, 1000)


@pytest.mark.slow
@pytest.mark.parametrize(
    'config', [SEG_CONFIG, SW_SEG_CONFIG], ids=['slak', 'shiftwise'])
def test_segmentor_onnx_matches_pytorch(config, tmp_path, ade20k_coco_mini):
    import mmcv
    folder = osp.join(ade20k_coco_mini, 'images', 'validation')
    images = [
        p for p in sorted(glob.glob(osp.join(folder, '*.jpg')))
        if mmcv.imread(p).shape[:2] == (480, 640)
    ][:3]
    out, _, model = _export(config, tmp_path, '--shape', '128', '160',
                            '--dynamic')
    session = _session(out)
    # the test pipeline resizes 640x480 to 171x128: a width the export
    # never saw, and not a multiple of 32
    inputs = _preprocess(config, model, images)
    assert inputs.shape == (3, 3, 128, 171)
    diffs = [
        _compare(session, model, inputs),
        _compare(session, model, inputs[1:2])
    ]
    print('segmentation: max abs / rel diff', diffs)
    logits = session.run(None, {'input': inputs.numpy()})[0]
    # the decode head's logits at 1/4 of the input (stride-4 stem: floor)
    assert logits.shape == (3, 150, 32, 42)


def test_load_model_and_errors(tmp_path):
    tool = import_tool('deployment/pytorch2onnx.py')
    ckpt = _checkpoint(CLS_CONFIG, tmp_path / 'cls.pth')
    cfg = Config.fromfile(CLS_CONFIG)
    deploy = tool.load_model(cfg, ckpt)
    assert deploy.backbone.deploy and not deploy.training
    reference = _reference(CLS_CONFIG, ckpt)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x, mode='tensor')
        torch.testing.assert_close(
            deploy(x, mode='tensor'),
            expected,
            rtol=RTOL,
            atol=ATOL_SCALE * float(expected.abs().max()))
    # a checkpoint already in deploy form (slak_reparameterize.py) loads
    deploy_ckpt = str(tmp_path / 'deploy.pth')
    save_checkpoint(dict(state_dict=deploy.state_dict()), deploy_ckpt)
    again = tool.load_model(cfg, deploy_ckpt)
    with torch.no_grad():
        assert torch.equal(again(x, mode='tensor'), deploy(x, mode='tensor'))

    # a checkpoint of another model is refused (strict loading)
    seg_ckpt = _checkpoint(SEG_CONFIG, tmp_path / 'seg.pth')
    with pytest.raises(RuntimeError, match='missing keys'):
        tool.load_model(cfg, seg_ckpt)
    # detectors are refused with the toolboxes that can be exported
    det = Config.fromfile(osp.join(CONFIGS, 'faster_rcnn_slak_mini_voc.py'))
    with pytest.raises(ValueError, match="'mmdet' cannot be exported"):
        tool.load_model(det, ckpt)
    with pytest.raises(ValueError, match='at least 2 images'):
        tool.export_onnx(
            tool.TensorModeWrapper(deploy),
            x[:1],
            str(tmp_path / 'x.onnx'),
            dynamic=True)
    with pytest.raises(SystemExit):
        tool.parse_args([CLS_CONFIG, ckpt, 'x.onnx', '--shape', '16', '16'])
    np.testing.assert_equal(
        tool.parse_args([CLS_CONFIG, ckpt, 'x.onnx']).shape, [224, 224])
