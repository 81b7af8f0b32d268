"""Deploy form of the large kernels (BN folded, small kernel merged)."""
import os.path as osp
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint, save_checkpoint

from slak_mm.apis import build_model
from slak_mm.models import DecomposedLargeKernelConv, SLaK

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MINI_ARCH = dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 64])
MINI_KERNELS = [13, 11, 9, 7, 3]


def _randomize_bn(module):
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize('kernel_size,small,stride', [(7, 3, 1), (13, 5, 1),
                                                      (5, 5, 1), (9, 3, 2),
                                                      (31, 5, 2), (1, 1, 1)])
@pytest.mark.parametrize('fast_path', [True, False])
def test_module_equivalence(kernel_size, small, stride, fast_path):
    torch.manual_seed(0)
    m = DecomposedLargeKernelConv(
        6, kernel_size, small, stride=stride, fast_path=fast_path)
    _randomize_bn(m)
    m.eval()
    x = torch.randn(2, 6, 23, 18)
    with torch.no_grad():
        before = m(x)
        m.switch_to_deploy()
        after = m(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert m.deploy
    assert not hasattr(m, 'branch_kxs') and not hasattr(m, 'branch_sxs')
    k, s = kernel_size, small
    shapes = {n: tuple(t.shape) for n, t in m.state_dict().items()}
    assert shapes == {
        'reparam_kxs.weight': (6, 1, k, s),
        'reparam_kxs.bias': (6, ),
        'reparam_sxk.weight': (6, 1, s, k)
    }


def test_merged_kernel_is_the_sum_of_folded_branches():
    """The (s, s) kernel lands centred inside the (K, s) kernel."""
    m = DecomposedLargeKernelConv(2, 7, 3, norm_cfg=None)
    for b in (m.branch_kxs, m.branch_sxk, m.branch_sxs):
        nn.init.ones_(b.conv.weight)
    kxs, bias, sxk = m.get_equivalent_kernel_bias()
    assert torch.equal(bias, torch.zeros(2))
    expected = torch.ones(2, 1, 7, 3)
    expected[:, :, 2:5] += 1
    assert torch.equal(kxs, expected)
    assert torch.equal(sxk, torch.ones(2, 1, 3, 7))


def test_idempotent_and_train_mode_after_deploy():
    torch.manual_seed(0)
    m = DecomposedLargeKernelConv(4, 9, 3)
    _randomize_bn(m)
    m.eval()
    x = torch.randn(2, 4, 12, 12)
    m.switch_to_deploy()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    m.switch_to_deploy()
    assert m.state_dict().keys() == state.keys()
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k])
    with torch.no_grad():
        eval_out = m(x)
    # documented: training mode works and computes the same function
    # (there are no BN statistics any more); gradients reach the kernels
    m.train()
    out = m(x)
    torch.testing.assert_close(out, eval_out)
    out.sum().backward()
    assert m.reparam_kxs.weight.grad is not None
    assert m.reparam_sxk.weight.grad is not None
    with pytest.raises(RuntimeError, match='deploy form'):
        m.get_equivalent_kernel_bias()


def test_deploy_built_module_loads_switched_state():
    torch.manual_seed(0)
    m = DecomposedLargeKernelConv(4, 9, 3, stride=2)
    _randomize_bn(m)
    m.eval()
    x = torch.randn(1, 4, 15, 11)
    with torch.no_grad():
        expected = m(x)
    m.switch_to_deploy()
    built = DecomposedLargeKernelConv(4, 9, 3, stride=2, deploy=True)
    built.load_state_dict(m.state_dict())  # strict
    with torch.no_grad():
        torch.testing.assert_close(built(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('stride', [1, 2])
def test_undecomposed_kernel(stride):
    """decompose=False: dense K x K + s x s branches (official
    ``lkb_origin`` + ``small_conv``); fast path, plain modules and deploy
    form (the small kernel merged at the centre) agree, in train and eval
    mode."""
    torch.manual_seed(0)
    plain = DecomposedLargeKernelConv(
        5, 11, 3, stride=stride, decompose=False, fast_path=False)
    _randomize_bn(plain)
    shapes = {n: tuple(t.shape) for n, t in plain.state_dict().items()}
    assert shapes['branch_kxk.conv.weight'] == (5, 1, 11, 11)
    assert shapes['branch_sxs.conv.weight'] == (5, 1, 3, 3)
    assert not any(n.startswith(('branch_kxs', 'branch_sxk')) for n in shapes)
    fast = DecomposedLargeKernelConv(5, 11, 3, stride=stride, decompose=False)
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(2, 5, 17, 14, requires_grad=True)
    outs, grads = [], []
    for m in (plain, fast):  # train mode: BN with batch statistics
        out = m.train()(x)
        outs.append(out)
        grads.append(torch.autograd.grad((out * out).sum(), x)[0])
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-4, rtol=1e-5)
    size = (17 - 1) // stride + 1, (14 - 1) // stride + 1
    assert outs[0].shape == (2, 5) + size
    # the dense branch is a plain centred K x K depthwise conv
    branch = F.conv2d(x, plain.branch_kxk.conv.weight, None, stride, 5, 1, 5)
    torch.testing.assert_close(
        plain.branch_kxk.conv(x), branch, atol=1e-6, rtol=1e-6)
    fast.eval()
    with torch.no_grad():
        reference = plain.eval()(x)
        torch.testing.assert_close(fast(x), reference, atol=1e-5, rtol=1e-5)
        fast.switch_to_deploy()
        assert set(
            fast.state_dict()) == {'reparam_kxk.weight', 'reparam_kxk.bias'}
        torch.testing.assert_close(fast(x), reference, atol=1e-5, rtol=1e-5)
        built = DecomposedLargeKernelConv(
            5, 11, 3, stride=stride, decompose=False, deploy=True)
        built.load_state_dict(fast.state_dict())
        torch.testing.assert_close(built(x), reference, atol=1e-5, rtol=1e-5)
    # the merged kernel: small kernel added at the centre
    m = DecomposedLargeKernelConv(2, 7, 3, norm_cfg=None, decompose=False)
    nn.init.ones_(m.branch_kxk.conv.weight)
    nn.init.ones_(m.branch_sxs.conv.weight)
    kxk, bias, none = m.get_equivalent_kernel_bias()
    expected_kernel = torch.ones(2, 1, 7, 7)
    expected_kernel[:, :, 2:5, 2:5] += 1
    assert torch.equal(kxk, expected_kernel) and none is None


def test_group_norm_cannot_be_folded():
    m = DecomposedLargeKernelConv(
        4, 7, 3, norm_cfg=dict(type='GN', num_groups=2))
    with pytest.raises(TypeError, match='BatchNorm'):
        m.switch_to_deploy()
    assert not m.deploy and m.branch_kxs is not None


def test_backbone_equivalence_and_deploy_arg():
    torch.manual_seed(0)
    kwargs = dict(
        arch=MINI_ARCH,
        kernel_size=MINI_KERNELS,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        layer_scale_init_value=1.)
    model = SLaK(**kwargs)
    _randomize_bn(model)
    model.eval()
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        before = model(x)
        model.switch_to_deploy()
        model.switch_to_deploy()  # idempotent
        after = model(x)
    assert model.deploy
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not any('branch_' in k for k in model.state_dict())
    # SLaK(deploy=True) builds the same keys and loads the state strictly
    built = SLaK(**kwargs, deploy=True)
    assert built.state_dict().keys() == model.state_dict().keys()
    built.load_state_dict(model.state_dict())
    built.eval()
    with torch.no_grad():
        for b, a in zip(before, built(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # layer-decay ids still resolve for the deploy keys
    assert built.get_layer_depth(
        'backbone.stages.2.1.large_kernel.reparam_kxs.weight',
        'backbone.') == (3, 8)


def _import_converter():
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'model_converters'))
    try:
        import slak_reparameterize
    finally:
        sys.path.pop(0)
    return slak_reparameterize


@pytest.mark.parametrize('config,toolbox', [
    ('tests/data/configs/upernet_slak_mini_ade20k.py', 'mmseg'),
    ('tests/data/configs/slak_mini_in1k.py', 'mmpretrain'),
    ('tests/data/configs/faster_rcnn_slak_mini_voc.py', 'mmdet'),
])
def test_converter_tool(config, toolbox, tmp_path):
    """tools/model_converters/slak_reparameterize.py CONFIG CKPT OUT: the
    deploy checkpoint loads into the config with
    ``model.backbone.deploy=True`` and gives the same backbone outputs."""
    path = osp.join(REPO_ROOT, config)
    if not osp.exists(path):
        pytest.skip(f'{config} not present')
    pytest.importorskip(toolbox)
    converter = _import_converter()
    before = DefaultScope.get_current_instance()
    scope = before.scope_name if before is not None else None
    torch.manual_seed(0)
    model = converter.build_model(Config.fromfile(path))
    _randomize_bn(model)
    ckpt = str(tmp_path / 'trained.pth')
    out = str(tmp_path / 'deploy.pth')
    save_checkpoint(
        dict(meta=dict(epoch=3), state_dict=model.state_dict()), ckpt)
    converter.main([path, ckpt, out])

    cfg = Config.fromfile(path)
    cfg.merge_from_dict({
        'model.backbone.deploy': True,
        'model.backbone.init_cfg': None
    })
    deployed = build_model(cfg)
    loaded = load_checkpoint(deployed, out, map_location='cpu', strict=True)
    assert loaded['meta'] == dict(epoch=3, slak_deploy=True)
    model.eval()
    deployed.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(deployed.backbone(x), model.backbone(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # a deploy config or a checkpoint of another model are refused
    with pytest.raises(ValueError, match='deploy form'):
        converter.main(
            [path, ckpt, out, '--cfg-options', 'model.backbone.deploy=True'])
    with pytest.raises(RuntimeError):
        converter.main([path, out, str(tmp_path / 'again.pth')])
    # the default registry scope is left as it was (mmengine restores a
    # deep copy of the instance, so compare the scope names)
    after = DefaultScope.get_current_instance()
    assert (after.scope_name if after is not None else None) == scope
